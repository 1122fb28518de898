"""What a user reads when a batch job fails for a reason that is not an openEO error of a process."""

from __future__ import annotations

from typing import Any, Callable


def describe_failure(exc: BaseException, settings: Any,
                     input_size: Callable[[], int | None] = lambda: None) -> tuple[str, str]:
    """(message that says what to change, error code) for an unexpected exception in a job.
    ``input_size()``: the job's input in values (asked only when it helps the message)."""
    name = type(exc).__name__
    if name == "KilledWorker" or isinstance(exc, MemoryError):
        try:
            values = input_size()
        except Exception:  # noqa: BLE001 - the size only decorates the message
            values = None
        size = f" The job loads {values:,} values ({values * 4 / 2**30:.1f} GiB as float32)." if values else ""
        return (f"A Dask worker ran out of memory or died while computing this job (worker memory limit "
                f"{settings.dask_memory_limit}).{size} Reduce the job's size — a smaller extent, fewer "
                f"dates or bands, a coarser resolution — or ask the operator for more memory per worker.",
                "WorkerMemoryExceeded")
    if name in ("CommClosedError", "TimeoutError") and "distributed" in type(exc).__module__:
        return ("The connection to the Dask cluster was lost while computing this job. Start it again; "
                "if this persists, the cluster is unavailable: contact the operator.", "ClusterUnavailable")
    if isinstance(exc, OSError) and getattr(exc, "errno", None) == 28:
        return ("The server ran out of disk space while writing the results. Start the job again later "
                "or write a smaller result (compression, fewer bands).", "StorageFailure")
    return (f"The job failed with an internal error ({name}: {exc}). Start it again; if it fails the same "
            f"way, report the job id to the operator.", "Internal")
