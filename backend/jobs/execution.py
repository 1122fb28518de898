"""One batch job run: graph → values on the cluster → files in the run directory → asset metadata.

Files go to ``<results_dir>/<job id>/<run id>/``; nothing there is visible to users until the runner
publishes the run in the database (``JobStore.finish``), so a crash mid-write never exposes a partial
result, and a re-run never mixes with the previous one.
"""

from __future__ import annotations

import logging
import secrets
import shutil
import time
from pathlib import Path
from typing import Any, Callable

import dask

from backend.jobs.assets import describe_asset, make_quicklook
from backend.jobs.cluster import ClusterStream
from backend.processing.engine.executor import RunContext
from backend.processing.sync import evaluate
from backend.processing.writers import write_result

log = logging.getLogger(__name__)
QUICKLOOK = "quicklook.png"


def new_run_dir(results_dir: Path, job_id: str) -> tuple[str, Path]:
    run_id = f"run-{int(time.time())}-{secrets.token_hex(4)}"
    path = results_dir / job_id / run_id
    path.mkdir(parents=True)
    return run_id, path


def execute_job(process: dict, context: RunContext, implementations: Any, stream: ClusterStream,
                run_dir: Path, threads: int, log_entry: Callable[..., None]) -> dict[str, dict]:
    """Compute and write the job's result into ``run_dir``; returns the asset descriptions."""
    started = time.monotonic()
    # Graph construction and small eager computations (e.g. geometry handling) run here, on threads;
    # the cube itself is computed on the cluster through the stream.
    with dask.config.set(scheduler="threads", num_workers=threads):
        data, output_format, options = evaluate(process, implementations, context)
        log_entry("debug", f"Process graph evaluated in {time.monotonic() - started:.2f} s; computing on the cluster.")
        written = write_result(stream.materialize(data), output_format, options, run_dir)
    assets = {written.filename: describe_asset(written.path, written.media_type, ["data"])}
    if written.media_type.startswith("image/tiff"):
        quicklook = make_quicklook(written.path, run_dir / QUICKLOOK)
        if quicklook is not None:
            assets[QUICKLOOK] = describe_asset(quicklook, "image/png", ["overview"])
    return assets


def remove_runs(results_dir: Path, job_id: str, keep: str | None = None) -> None:
    """Delete a job's run directories except ``keep`` (all of them, and the job dir, when keep is None)."""
    job_dir = results_dir / job_id
    if not job_dir.is_dir():
        return
    if keep is None:
        shutil.rmtree(job_dir, ignore_errors=True)
        return
    for run in job_dir.iterdir():
        if run.name != keep:
            shutil.rmtree(run, ignore_errors=True)
