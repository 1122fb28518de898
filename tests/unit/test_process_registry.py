"""The process registry: which processes /processes lists and which spec each one gets.

Specs come from inside the package (backend/process_specs/): our overrides first, then the pinned copy
of the official openeo-processes specs, then openeo-processes-dask's. A process without a spec stops
start-up instead of disappearing from /processes.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from backend.app import create_app
from backend.processing import process_registry
from backend.processing.process_registry import (OFFICIAL_SUBDIR, OWN_PROCESSES, SPECS_DIR, MissingProcessSpecs,
                                                 ProcessRegistry, _public_spec, dask_specs_dir, spec_files)
from backend.processing.processes import build_implementations
from backend.settings import load_settings
from tests.conftest import SHARED_ASSETS

OFFICIAL_DIR = SPECS_DIR / OFFICIAL_SUBDIR
SUITE_PROCESSES = SHARED_ASSETS / "assets" / "processes"  # openeo-processes as the official suite checks it
OUR_PROCESSES = {"anomaly", "climatological_normal", "load_geojson", "load_url", "apply_neighborhood"}


@pytest.fixture(scope="module")
def registry() -> ProcessRegistry:
    return ProcessRegistry()


def read(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


def test_specs_are_inside_the_package():
    assert SPECS_DIR == Path(process_registry.__file__).resolve().parents[1] / "process_specs"
    assert (OFFICIAL_DIR / "LICENSE").is_file() and "Version:" in (OFFICIAL_DIR / "README.md").read_text()
    assert not (SPECS_DIR.parents[1] / "process_specs").exists()  # the old place, outside the package


def test_our_processes_are_offered(registry):
    assert OUR_PROCESSES <= OWN_PROCESSES and OUR_PROCESSES <= set(registry.ids())


def test_every_offered_spec_is_the_pinned_official_one_unless_overridden(registry):
    official = spec_files(OFFICIAL_DIR)
    own = spec_files(SPECS_DIR)
    dask = spec_files(dask_specs_dir())
    for pid in registry.ids():
        if pid in own:
            expected, source = read(own[pid]), "own"
        elif pid in official:
            expected, source = read(official[pid]), "openeo-processes"
        else:
            expected, source = read(dask[pid]), "openeo-processes-dask"
        assert registry.source(pid) == source, pid
        assert registry.spec(pid) == _public_spec(expected), pid


def test_the_current_official_text_is_served(registry):
    arccos = registry.spec("arccos")
    assert arccos["parameters"][0]["schema"] == {"type": ["number", "null"], "minimum": -1, "maximum": 1}
    assert arccos["returns"]["schema"] == {"type": ["number", "null"], "minimum": 0}
    # resample_spatial gained `align`, which the Python client always sends
    assert [p["name"] for p in registry.spec("resample_spatial")["parameters"]][-1] == "align"
    for pid in OUR_PROCESSES:  # the official texts now, no longer our own words
        assert registry.source(pid) == "openeo-processes", pid


def test_overrides_are_real_differences_and_documented():
    official = spec_files(OFFICIAL_DIR)
    readme = (SPECS_DIR / "README.md").read_text()
    for pid, path in spec_files(SPECS_DIR).items():
        assert f"`{pid}`" in readme, f"{pid}: every override is listed with its reason in the README"
        if pid in official:
            assert read(path) != read(official[pid]), f"{pid}: an override equal to the official spec"
    filter_bands = read(SPECS_DIR / "filter_bands.json")
    assert [p["name"] for p in filter_bands["parameters"]] == ["data", "bands"]  # no `wavelengths`


@pytest.mark.skipif(not SUITE_PROCESSES.is_dir(), reason=f"no openeo-processes assets in {SUITE_PROCESSES}")
def test_the_pinned_copy_is_the_suites_version(registry):
    upstream = spec_files(SUITE_PROCESSES)
    pinned = spec_files(OFFICIAL_DIR)
    assert set(pinned) == set(registry.ids()) & set(upstream)  # every offered process that has one
    for pid, path in pinned.items():
        assert path.read_bytes() == upstream[pid].read_bytes(), pid
        assert (path.parent.name == "proposals") == (upstream[pid].parent.name == "proposals"), pid


def test_every_offered_process_has_an_implementation(registry):
    assert build_implementations(registry).ids() == registry.ids()


def spec_copy(tmp_path: Path) -> Path:
    target = tmp_path / "process_specs"
    shutil.copytree(SPECS_DIR, target)
    return target


def test_a_missing_spec_stops_start_up(tmp_path, monkeypatch):
    specs = spec_copy(tmp_path)
    (specs / OFFICIAL_SUBDIR / "anomaly.json").unlink()  # ours: openeo-processes-dask has none either
    with pytest.raises(MissingProcessSpecs, match=r"without a spec: \['anomaly'\]"):
        ProcessRegistry(specs_dir=specs)
    monkeypatch.setattr(process_registry, "SPECS_DIR", specs)
    with pytest.raises(MissingProcessSpecs, match="anomaly"):
        create_app(load_settings(data_dir=tmp_path / "data", demo_catalog=False))


def test_missing_official_copy_stops_start_up(tmp_path):
    specs = spec_copy(tmp_path)
    shutil.rmtree(specs / OFFICIAL_SUBDIR)
    with pytest.raises(MissingProcessSpecs, match="no official process specs"):
        ProcessRegistry(specs_dir=specs)


def test_a_spec_without_implementation_stops_start_up(tmp_path):
    specs = spec_copy(tmp_path)
    (specs / "my_process.json").write_text(json.dumps({"id": "my_process", "parameters": [], "returns": {}}))
    with pytest.raises(MissingProcessSpecs, match="my_process"):
        ProcessRegistry(specs_dir=specs)


@pytest.mark.skipif(not SUITE_PROCESSES.is_dir(), reason=f"no openeo-processes assets in {SUITE_PROCESSES}")
def test_the_update_script_reproduces_the_pinned_copy(tmp_path):
    import importlib.util

    script = SPECS_DIR.parents[1] / "scripts" / "update_process_specs.py"
    module_spec = importlib.util.spec_from_file_location("update_process_specs", script)
    update_process_specs = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(update_process_specs)
    copied = update_process_specs.update(SUITE_PROCESSES, "test version", tmp_path / "copy")
    assert set(copied) == set(spec_files(OFFICIAL_DIR))
    made = sorted(p.relative_to(tmp_path / "copy") for p in (tmp_path / "copy").rglob("*") if p.is_file())
    assert made == sorted(p.relative_to(OFFICIAL_DIR) for p in OFFICIAL_DIR.rglob("*") if p.is_file())
    for path in made:
        if path.name != "README.md":
            assert (tmp_path / "copy" / path).read_bytes() == (OFFICIAL_DIR / path).read_bytes(), path
    assert "Version: test version" in (tmp_path / "copy" / "README.md").read_text()
