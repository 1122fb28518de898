"""A real federation for tests: `openeo-backend serve` processes with chosen demo collections (sharing one
generated demo catalog through a symlink) and `openeo-aggregator serve` in front, each a process group of
its own on 127.0.0.1, stopped with SIGTERM (SIGKILL after a grace period).

    a = start_backend(tmp / "a", "A", ["SENTINEL2_L2A_DEMO", "DEM_DEMO"], catalog=demo_catalog_dir)
    b = start_backend(tmp / "b", "B", ["SENTINEL1_GRD_DEMO", "DEM_DEMO"], catalog=demo_catalog_dir)
    aggregator = start_aggregator(tmp / "agg", {"A": a.url, "B": b.url}, health_interval=1)
    wait_ready([a, b, aggregator])

The spawning, waiting and stopping is the product's (aggregator/servers.py, which `openeo-aggregator demo`
runs on); this module only makes the servers run this checkout's code.
"""

from __future__ import annotations

import os
from pathlib import Path

from aggregator import servers
from aggregator.servers import ServerProcess, aggregator_config, stop_all  # noqa: F401 (re-exported)

REPO = Path(__file__).resolve().parents[2]
API = servers.API_PATH


def environment(**extra: str) -> dict[str, str]:
    """This environment with this checkout first on the path and no settings of this run leaking in."""
    path = os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH", "")) if p)
    return servers.child_environment(PYTHONPATH=path, **extra)


def start_backend(data_dir: Path, backend_id: str, collections: list[str], *,
                  extra_env: dict[str, str] | None = None, **options) -> ServerProcess:
    """`openeo-backend serve` (one worker) serving ``collections`` of the demo catalog; see
    aggregator.servers.start_backend for the options (catalog, users, job_runner, settings);
    ``extra_env``: more environment variables (e.g. the conformance runner's --backend-env)."""
    return servers.start_backend(data_dir, backend_id, collections, env=environment(**(extra_env or {})), **options)


def start_aggregator(data_dir: Path, backends: dict[str, str], **options) -> ServerProcess:
    """`openeo-aggregator serve` over ``backends``; see aggregator.servers.start_aggregator."""
    return servers.start_aggregator(data_dir, backends, env=environment(), **options)


def wait_ready(started, timeout: float = 240.0) -> None:
    """Until every server's /health answers; a server that exits or does not answer in time fails the
    test with its log."""
    try:
        servers.wait_ready(started, timeout=timeout)
    except servers.ServerFailed as failure:
        raise AssertionError(str(failure)) from None
