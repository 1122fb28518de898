"""Aggregator settings: sources and precedence, backend validation, the two-backend rule, light imports."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from aggregator.settings import (FederationConfigError, load_settings, require_federation, settings_help)
from backend.accounting.pricing import Plan
from backend.settings import OidcProvider

TWO = [{"id": "b1", "url": "http://127.0.0.1:8081/openeo/1.2/"}, {"id": "b2", "url": "http://127.0.0.1:8082/openeo/1.2"}]


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch):
    import os

    for name in [n for n in os.environ if n.startswith("OPENEO_AGGREGATOR_")]:
        monkeypatch.delenv(name)


def test_defaults(monkeypatch, tmp_path):
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.delenv("XDG_DATA_HOME", raising=False)
    settings = load_settings()
    assert (settings.host, settings.port, settings.backends) == ("127.0.0.1", 8090, [])
    assert settings.data_dir == tmp_path / ".local" / "share" / "openeo-aggregator"
    assert settings.resolved_database_url == f"sqlite:///{settings.data_dir / 'aggregator.db'}"
    assert (settings.timeouts.connect, settings.timeouts.metadata) == (1.0, 5.0)
    assert settings.timeouts.jobs > settings.timeouts.metadata and settings.timeouts.result > settings.timeouts.jobs
    assert settings.health_interval == 10.0


def test_backends_from_yaml_with_all_fields(tmp_path):
    config = tmp_path / "federation.yaml"
    config.write_text("""
backends:
  - id: vito
    url: https://openeo.example.org/openeo/1.2
    title: VITO
    description: Terrascope
    experimental: true
    weight: 2.5
    collections: {allow: ["SENTINEL2_*"], deny: [SENTINEL2_L1C]}
    processes: {deny: [run_udf]}
  - {id: eodc, url: "http://127.0.0.1:8082/openeo/1.2/", deprecated: true}
oidc_providers:
  - {id: egi, issuer: "https://aai.example/", title: EGI, audience: openeo-federation}
plans:
  - {name: basic, description: Basic plan}
""")
    settings = load_settings(config)
    vito, eodc = settings.backends
    assert vito.url == "https://openeo.example.org/openeo/1.2/"  # normalised: paths resolve below it
    assert vito.endpoint("collections") == "https://openeo.example.org/openeo/1.2/collections"
    assert (vito.display_title, vito.experimental, vito.deprecated, vito.weight) == ("VITO", True, False, 2.5)
    assert vito.collections.allows("SENTINEL2_L2A") and not vito.collections.allows("SENTINEL2_L1C")
    assert not vito.collections.allows("LANDSAT8")
    assert not vito.processes.allows("run_udf") and vito.processes.allows("ndvi")
    assert (eodc.display_title, eodc.deprecated, eodc.weight, eodc.collections.allows("ANY")) == ("eodc", True, 1.0, True)
    assert isinstance(settings.oidc_providers[0], OidcProvider)  # the backend's type, reused
    assert isinstance(settings.plans[0], Plan) and settings.plans[0].name == "basic"


def test_precedence_flags_over_env_over_file(monkeypatch, tmp_path):
    config = tmp_path / "c.yaml"
    config.write_text(f"port: 7000\ntitle: From file\nhealth_interval: 4\nbackends: {json.dumps(TWO)}\n")
    monkeypatch.setenv("OPENEO_AGGREGATOR_TITLE", "From env")
    monkeypatch.setenv("OPENEO_AGGREGATOR_PORT", "7001")
    settings = load_settings(config, port=7002, connect_timeout=None)
    assert (settings.port, settings.title, settings.health_interval) == (7002, "From env", 4.0)
    assert settings.connect_timeout == 1.0  # a None flag is "not given"
    assert [b.id for b in settings.backends] == ["b1", "b2"]


def test_backends_from_environment_json_replace_the_file(monkeypatch, tmp_path):
    config = tmp_path / "c.yaml"
    config.write_text(f"backends: {json.dumps(TWO)}\n")
    monkeypatch.setenv("OPENEO_AGGREGATOR_CONFIG", str(config))
    monkeypatch.setenv("OPENEO_AGGREGATOR_BACKENDS", json.dumps(
        [{"id": "x", "url": "https://x.example/openeo/1.2/", "collections": {"deny": ["S1"]}},
         {"id": "y", "url": "https://y.example/openeo/1.2/"}, {"id": "z", "url": "https://z.example/o/"}]))
    settings = load_settings()
    assert [b.id for b in settings.backends] == ["x", "y", "z"]
    assert settings.backends[0].collections.deny == ["S1"]


def test_fewer_than_two_backends_refused_with_a_clear_error():
    with pytest.raises(FederationConfigError, match=r"at least 2 backends; configured: none.*backends:"):
        require_federation(load_settings())
    one = load_settings(backends=TWO[:1])
    with pytest.raises(FederationConfigError, match="configured: b1"):
        require_federation(one)
    require_federation(load_settings(backends=TWO))  # two: fine
    from aggregator.federation.backends import BackendConfig

    require_federation(one, registered=[BackendConfig(id="b9", url="http://127.0.0.1:9/openeo/1.2/")])


def test_duplicate_backend_ids_refused():
    with pytest.raises(ValueError, match="unique; repeated: b1"):
        load_settings(backends=[TWO[0], TWO[0] | {"url": "http://other/openeo/1.2/"}, TWO[1]])


@pytest.mark.parametrize("backend, message", [
    ({"id": "b 1", "url": "http://h/openeo/1.2/"}, "pattern"),
    ({"id": "b1", "url": "ftp://h/openeo/1.2/"}, "http"),
    ({"id": "b1", "url": "127.0.0.1:8081/openeo/1.2/"}, "http"),
    ({"id": "b1", "url": "http:///openeo"}, "http"),
    ({"id": "b1", "url": "http://h/openeo/1.2/", "weight": 0}, "greater than 0"),
    ({"id": "b1", "url": "http://h/openeo/1.2/", "colections": {}}, "colections"),
    ({"id": "b1", "url": "http://h/openeo/1.2/", "processes": {"allow": ["x"]}}, "allow"),
])
def test_invalid_backend_entries_refused(backend, message):
    with pytest.raises(ValueError, match=message):
        load_settings(backends=[backend, TWO[1]])


def test_unknown_setting_in_file_refused(tmp_path):
    config = tmp_path / "c.yaml"
    config.write_text("backend: []\n")
    with pytest.raises(ValueError, match="backend"):
        load_settings(config)


def test_help_lists_every_setting():
    text = settings_help()
    for name in ("OPENEO_AGGREGATOR_BACKENDS", "OPENEO_AGGREGATOR_HEALTH_INTERVAL", "OPENEO_AGGREGATOR_DATA_DIR",
                 "OPENEO_AGGREGATOR_FANOUT_DEADLINE", "OPENEO_AGGREGATOR_CIRCUIT_FAILURE_THRESHOLD"):
        assert name in text


def test_federation_layer_imports_nothing_heavy():
    """The aggregator must install and start without the processing stack (and without Flask here)."""
    heavy = ("dask", "xarray", "rasterio", "odc", "geopandas", "numpy", "flask", "sqlalchemy")
    code = ("import sys, aggregator.settings, aggregator.federation.wiring; "
            f"print([m for m in sys.modules if m.split('.')[0] in {heavy!r} "
            "or m.startswith(('backend.processing', 'backend.jobs'))])")
    root = Path(__file__).resolve().parents[3]
    output = subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True, text=True, check=True,
                            env={"PYTHONPATH": str(root), "PATH": ""}).stdout
    assert output.strip() == "[]"
