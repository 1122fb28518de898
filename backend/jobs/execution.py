"""One batch job run: graph → values on the cluster → files in the run directory → asset metadata.

Files go to the local run directory ``<results_dir>/<job id>/<run id>/`` (``ResultStorage.new_run``);
nothing there is visible to users until the runner publishes the run (``ResultStorage.publish``, then
``JobStore.finish``), so a crash mid-write never exposes a partial result, and a re-run never mixes with
the previous one.
"""

from __future__ import annotations

import logging
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable

from backend.jobs.assets import describe_asset, make_quicklook
from backend.jobs.cluster import ClusterStream, chunk_size_for
from backend.processing.compute import ComputeScope, computing
from backend.processing.engine.executor import RunContext
from backend.processing.loading import load_chunk_size
from backend.processing.provenance import Provenance
from backend.processing.sync import evaluate
from backend.processing.writers import write_result

log = logging.getLogger(__name__)
QUICKLOOK = "quicklook.png"


def execute_job(process: dict, context: RunContext, implementations: Any, stream: ClusterStream,
                run_dir: Path, threads: int, log_entry: Callable[..., None]) -> tuple[dict[str, dict], Provenance]:
    """Compute and write the job's result into ``run_dir``; returns the asset descriptions and where the
    result came from (finished now)."""
    started, began = time.monotonic(), datetime.now(timezone.utc)
    # Graph construction and small eager computations (e.g. geometry handling) run here, on threads of
    # this job's own (several jobs run in one runner process; nothing of one job is process-global);
    # the cube itself is computed on the cluster through the stream.
    # Loads are chunked to fit the workers' memory (smaller chunks for small memory limits).
    chunk = chunk_size_for(stream.client)
    with computing(ComputeScope(threads=threads)), load_chunk_size(chunk):
        data, output_format, options = evaluate(process, implementations, context)
        log_entry("debug", f"Process graph evaluated in {time.monotonic() - started:.2f} s (loads chunked "
                           f"around {chunk} x {chunk} px); computing on the cluster.")
        provenance = Provenance.of(process, context.inputs, began)
        written = write_result(stream.materialize(data), output_format, options, run_dir,
                               metadata=provenance.file_metadata())
    assets = {written.filename: describe_asset(written.path, written.media_type, ["data"])}
    if written.media_type.startswith("image/tiff"):
        quicklook = make_quicklook(written.path, run_dir / QUICKLOOK)
        if quicklook is not None:
            assets[QUICKLOOK] = describe_asset(quicklook, "image/png", ["overview"])
    return assets, provenance.finished(datetime.now(timezone.utc))

