from __future__ import annotations

from pathlib import Path

import pytest

from backend.settings import load_settings


def test_defaults(monkeypatch, tmp_path):
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.delenv("XDG_DATA_HOME", raising=False)
    monkeypatch.delenv("OPENEO_BACKEND_DATA_DIR", raising=False)
    settings = load_settings()
    assert (settings.host, settings.port) == ("127.0.0.1", 8080)
    assert settings.data_dir == tmp_path / ".local" / "share" / "openeo-backend"
    assert settings.resolved_database_url == f"sqlite:///{settings.data_dir / 'backend.db'}"


def test_precedence_flags_over_env_over_file(monkeypatch, tmp_path):
    config = tmp_path / "c.yaml"
    config.write_text("port: 7000\ntitle: From file\nbackend_id: file-id\n")
    monkeypatch.setenv("OPENEO_BACKEND_TITLE", "From env")
    monkeypatch.setenv("OPENEO_BACKEND_PORT", "7001")
    settings = load_settings(config, port=7002)
    assert (settings.port, settings.title, settings.backend_id) == (7002, "From env", "file-id")


def test_config_file_from_environment(monkeypatch, tmp_path):
    config = tmp_path / "c.yaml"
    config.write_text("oidc_providers:\n- {id: egi, issuer: 'https://aai.example/', title: EGI, audience: x}\n")
    monkeypatch.setenv("OPENEO_BACKEND_CONFIG", str(config))
    provider = load_settings().oidc_providers[0]
    assert (provider.id, provider.audience, provider.scopes) == ("egi", "x", ["openid"])


def test_nested_settings_from_environment_json(monkeypatch):
    monkeypatch.setenv("OPENEO_BACKEND_STAC_SOURCES",
                       '[{"kind": "api", "url": "https://stac.example", "collections": ["s2"], '
                       '"id_map": {"S2": "s2"}}]')
    source = load_settings().stac_sources[0]
    assert (source.kind, source.collections, source.id_map) == ("api", ["s2"], {"S2": "s2"})


def test_unknown_setting_in_file_is_rejected(tmp_path):
    config = tmp_path / "c.yaml"
    config.write_text("prot: 1\n")
    with pytest.raises(ValueError, match="prot"):
        load_settings(config)


def test_relative_data_dir_becomes_absolute(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    assert load_settings(data_dir=Path("d")).data_dir == tmp_path / "d"


def test_grant_types_are_those_the_api_allows():
    with pytest.raises(ValueError, match="grant_types"):
        load_settings(oidc_providers=[{"id": "p", "issuer": "https://i", "title": "t",
                                       "default_clients": [{"id": "c", "grant_types": ["client_credentials"]}]}])


def test_oidc_provider_without_audience_or_default_clients_says_what_to_set():
    with pytest.raises(ValueError, match="OIDC provider 'p': set `audience` .* or list its `default_clients`"):
        load_settings(oidc_providers=[{"id": "p", "issuer": "https://i", "title": "t"}])


@pytest.mark.parametrize("audience, accepted", [
    (None, {"portal", "cli"}), ("scripts", {"scripts"}), (["scripts", "portal"], {"scripts", "portal"}), ("*", None),
])
def test_oidc_audience_defaults_to_the_default_clients(audience, accepted):
    clients = [{"id": "portal"}, {"id": "cli"}]
    provider = load_settings(oidc_providers=[{"id": "p", "issuer": "https://i", "title": "t", "audience": audience,
                                              "default_clients": clients}]).oidc_providers[0]
    assert provider.accepted_audiences == (None if accepted is None else frozenset(accepted))


@pytest.mark.parametrize("audience, fragment", [(["*", "portal"], "cannot be combined"), ("", "empty audience"),
                                                ([], "set `audience`")])
def test_oidc_audience_mistakes(audience, fragment):
    with pytest.raises(ValueError, match=fragment):
        load_settings(oidc_providers=[{"id": "p", "issuer": "https://i", "title": "t", "audience": audience}])


def test_demo_collections_default_to_all_and_come_from_the_environment(monkeypatch):
    assert load_settings().demo_collections == ["SENTINEL2_L2A_DEMO", "SENTINEL1_GRD_DEMO", "DEM_DEMO"]
    monkeypatch.setenv("OPENEO_BACKEND_DEMO_COLLECTIONS", '["SENTINEL1_GRD_DEMO", "DEM_DEMO", "DEM_DEMO"]')
    assert load_settings().demo_collections == ["SENTINEL1_GRD_DEMO", "DEM_DEMO"]


@pytest.mark.parametrize("value, fragment", [
    (["SENTINEL1_GRD_DEMO", "S1_GRD"], "unknown demo collection(s) 'S1_GRD'"),
    ([], "no demo collection chosen"),
])
def test_demo_collections_are_checked(value, fragment):
    with pytest.raises(ValueError) as info:
        load_settings(demo_collections=value)
    message = str(info.value)
    assert "demo_collections" in message and fragment in message
    assert "SENTINEL2_L2A_DEMO, SENTINEL1_GRD_DEMO, DEM_DEMO" in message  # what the user can choose from
