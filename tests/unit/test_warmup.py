"""Worker warm-up (backend/processing/warmup.py): every step runs on the real services; failures never raise."""

from __future__ import annotations

import logging
from types import SimpleNamespace

import numpy as np
import pytest
import rasterio

from backend.processing import warmup
from backend.settings import StacSource

STEPS = ["imports", "database", "engine", "cog"]


@pytest.fixture
def written(monkeypatch) -> dict:
    """What the engine step wrote, read before the temporary directory goes."""
    kept: dict = {}
    real_open_cog = warmup._open_cog

    def keep(work_dir):
        with rasterio.open(work_dir / "warmup.tif") as dataset:
            kept.update(shape=(dataset.count, dataset.height, dataset.width), crs=dataset.crs.to_epsg(),
                        values=dataset.read(1))
        real_open_cog(work_dir)

    monkeypatch.setattr(warmup, "_open_cog", keep)
    return kept


def test_warm_up_runs_every_step_on_the_demo_catalog(live_server, written, caplog):
    with caplog.at_level(logging.INFO, logger="backend.processing.warmup"):
        outcome = warmup.warm_up(live_server.services)
    assert list(outcome) == STEPS
    assert all(isinstance(seconds, float) and 0 <= seconds < warmup.BUDGET_S for seconds in outcome.values()), outcome
    # load_collection 28 x 28 px (280 m at 10 m) -> ndvi; one demo date in 1-10 June, so t is dropped
    assert (written["shape"], written["crs"]) == ((1, 28, 28), 32632)
    assert np.isfinite(written["values"]).any() and np.nanmax(np.abs(written["values"])) <= 1  # NDVI range
    assert "warmed up in" in caplog.text and "engine" in caplog.text


def test_synthetic_cube_without_the_demo_catalog(live_server, written, monkeypatch):
    services = live_server.services
    original, calls = warmup._synthetic_gtiff, []

    def spy(work_dir, threads):
        calls.append(threads)
        return original(work_dir, threads)

    monkeypatch.setattr(warmup, "_synthetic_gtiff", spy)
    settings = services.settings.model_copy(update={"demo_catalog": False})
    outcome = warmup.warm_up(SimpleNamespace(settings=settings, db=services.db, collections=services.collections,
                                             implementations=services.implementations))
    assert calls == [settings.sync_threads]
    assert all(isinstance(seconds, float) for seconds in outcome.values()), outcome
    assert (written["shape"], written["crs"]) == ((1, 64, 64), 32632)
    assert np.array_equal(written["values"], np.arange(64 * 64, dtype="float32").reshape(64, 64))



def test_a_local_static_catalog_warms_up_with_its_first_collection(live_server, written, session_data_dir):
    """No demo catalog, every source a static catalog on this machine: a few pixels of the first collection
    (DEM_DEMO: no red/nir bands, so no ndvi) → mean over t → GTiff, on a sync slot; not the synthetic cube."""
    services = live_server.services
    catalog = session_data_dir / "demo-catalog" / "catalog.json"
    settings = services.settings.model_copy(update={"demo_catalog": False, "stac_sources": [
        StacSource(kind="static", url=str(catalog))]})
    graph = warmup._warmup_graph(SimpleNamespace(settings=settings, collections=services.collections))
    assert [n["process_id"] for n in graph["process_graph"].values()] == [
        "load_collection", "reduce_dimension", "save_result"]
    assert graph["process_graph"]["load"]["arguments"]["id"] == "DEM_DEMO"
    outcome = warmup.warm_up(SimpleNamespace(settings=settings, db=services.db, collections=services.collections,
                                             implementations=services.implementations))
    assert all(isinstance(seconds, float) for seconds in outcome.values()), outcome
    bands, height, width = written["shape"]
    assert bands == 1 and 1 <= height <= 10 and 1 <= width <= 10  # ~40 m at the DEM's resolution
    assert np.isfinite(written["values"]).all() and written["values"].min() > 0  # elevations in metres


def test_the_local_warm_up_graph_has_ndvi_for_red_and_nir_and_nothing_remote():
    metadata = {"extent": {"spatial": {"bbox": [[11.0, 46.0, 12.0, 47.0]]},
                           "temporal": {"interval": [["2022-06-01T00:00:00Z", None]]}},
                "summaries": {"eo:bands": [{"name": "B04", "common_name": "red"}, {"name": "B08", "common_name": "nir"},
                                           {"name": "SCL"}]}}
    graph = warmup.local_graph("S2", metadata)["process_graph"]
    load = graph["load"]["arguments"]
    assert load["bands"] == ["B04", "B08"] and load["temporal_extent"] == ["2022-06-01", "2022-07-02"]
    assert load["spatial_extent"] == pytest.approx({"west": 11.4998, "south": 46.4998, "east": 11.5002,
                                                    "north": 46.5002})
    assert graph["ndvi"]["arguments"] == {"data": {"from_node": "load"}, "nir": "B08", "red": "B04"}
    remote = SimpleNamespace(settings=SimpleNamespace(demo_catalog=False, stac_sources=[
        StacSource(kind="static", url="/data/catalog.json"), StacSource(kind="api", url="https://stac.example")]),
        collections=None)  # would fail if it were asked: a remote source is never contacted
    assert warmup._warmup_graph(remote) is None


def test_failures_are_logged_not_raised(caplog):
    broken = SimpleNamespace(settings=None, db=None, collections=None, implementations=None)
    with caplog.at_level(logging.WARNING, logger="backend.processing.warmup"):
        outcome = warmup.warm_up(broken)
    assert isinstance(outcome["imports"], float)
    for step in ("database", "engine", "cog"):
        assert outcome[step].startswith("failed: "), outcome
    assert outcome["database"] == "failed: AttributeError: 'NoneType' object has no attribute 'engine'"
    assert "worker warm-up step database failed" in caplog.text


def test_steps_after_the_budget_are_skipped():
    outcome = warmup.warm_up(SimpleNamespace(), budget=-1)
    assert outcome == {step: "skipped (over the -1 s budget)" for step in STEPS}


def test_long_lived_objects_are_frozen_for_the_garbage_collector():
    import gc

    long_lived = [{"cache": "entry"}]  # a container the collector tracks
    try:
        frozen = warmup.freeze_long_lived_objects()
        assert frozen > 10_000  # modules, functions, caches of this test process
        # frozen objects still die by reference counting (other threads' objects too): the count only falls
        assert frozen - 1_000 < gc.get_freeze_count() <= frozen
        assert not any(obj is long_lived for obj in gc.get_objects())  # no collection scans it any more
    finally:
        gc.unfreeze()
