"""What a user reads when a batch job fails for a reason that is not an openEO error of a process."""

from __future__ import annotations

from typing import Any


def describe_failure(exc: BaseException, settings: Any) -> tuple[str, str]:
    """(message that says what to change, error code) for an unexpected exception in a job."""
    name = type(exc).__name__
    if name == "KilledWorker" or isinstance(exc, MemoryError):
        return (f"A Dask worker ran out of memory or died while computing this job (worker memory limit "
                f"{settings.dask_memory_limit}). Reduce the job's size — a smaller extent, fewer dates or "
                f"bands, a coarser resolution — or ask the operator for more memory per worker.",
                "WorkerMemoryExceeded")
    if name in ("CommClosedError", "TimeoutError") and "distributed" in type(exc).__module__:
        return ("The connection to the Dask cluster was lost while computing this job. Start it again; "
                "if this persists, the cluster is unavailable: contact the operator.", "ClusterUnavailable")
    if isinstance(exc, OSError) and getattr(exc, "errno", None) == 28:
        return ("The server ran out of disk space while writing the results. Start the job again later "
                "or write a smaller result (compression, fewer bands).", "StorageFailure")
    return (f"The job failed with an internal error ({name}: {exc}). Start it again; if it fails the same "
            f"way, report the job id to the operator.", "Internal")
