"""Worker warm-up (backend/processing/warmup.py): every step runs on the real services; failures never raise."""

from __future__ import annotations

import logging
from types import SimpleNamespace

import numpy as np
import pytest
import rasterio

from backend.processing import warmup

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
