"""A real federation for the end-to-end tests: two `openeo-backend serve` processes (A: Sentinel-2 and
DEM demo collections, B: Sentinel-1 and DEM; one generated demo catalog linked into both data dirs) and
`openeo-aggregator serve` in front, with the same user everywhere. Started once per package. The backends
run their batch-job runner (one Dask worker each: two cores are shared by everything) and may read each
other's signed results (``fetch_allowed_hosts``: load_stac across backends)."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from backend.demo import DEMO_DEM_COLLECTION, DEMO_S1_COLLECTION, DEMO_S2_COLLECTION
from tests.support.federation import ServerProcess, start_aggregator, start_backend, wait_ready

USER = ("fed-user", "fed-password")
FAST_HEALTH = {"health_interval": 1.0, "health_recheck": 0.5, "health_timeout": 2.0, "fanout_deadline": 2.0,
               "metadata_timeout": 3.0, "jobs_listing_deadline": 5.0}
JOB_RUNNER = {"job_runner": True, "dask_workers": 1, "job_poll_interval": 0.5, "fetch_allowed_hosts": ["127.0.0.1"]}


@dataclass
class Federation:
    a: ServerProcess
    b: ServerProcess
    aggregator: ServerProcess

    @property
    def backends(self) -> dict[str, str]:
        return {"A": self.a.url, "B": self.b.url}


@pytest.fixture(scope="package")
def federation(demo_catalog_dir, tmp_path_factory) -> Federation:
    base = tmp_path_factory.mktemp("federation")
    a = start_backend(base / "a", "A", [DEMO_S2_COLLECTION, DEMO_DEM_COLLECTION], catalog=demo_catalog_dir, users=[USER],
                      **JOB_RUNNER)
    b = start_backend(base / "b", "B", [DEMO_S1_COLLECTION, DEMO_DEM_COLLECTION], catalog=demo_catalog_dir, users=[USER],
                      **JOB_RUNNER)
    aggregator = None
    try:
        wait_ready([a, b])
        aggregator = start_aggregator(base / "aggregator", {"A": a.url, "B": b.url}, users=[USER], **FAST_HEALTH)
        wait_ready([aggregator])
        yield Federation(a, b, aggregator)
    finally:
        for server in (aggregator, a, b):
            if server is not None:
                server.stop()
