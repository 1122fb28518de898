"""What a user reads when a batch job fails for a reason that is not an openEO error of a process."""

from __future__ import annotations

import errno
from typing import Any, Callable


# Below this many free bytes where the run is written, a failure is taken for the full disk it most likely is:
# GDAL reports a full disk as e.g. "TIFFWriteDirectoryTagData:IO error writing tag data" (no errno).
LOW_DISK_SPACE = 16 * 2**20


def describe_failure(exc: BaseException, settings: Any, input_size: Callable[[], int | None] = lambda: None,
                     free_disk: Callable[[], int | None] = lambda: None) -> tuple[str, str]:
    """(message that says what to change, error code) for an unexpected exception in a job.
    ``input_size()``: the job's input in values (asked only when it helps the message); ``free_disk()``: free
    bytes where the run's files are written (before they are removed), None if unknown."""
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
    if _out_of_space(exc, free_disk):
        return ("The server ran out of disk space while writing the results. Start the job again later "
                "or write a smaller result (compression, fewer bands).", "StorageFailure")
    return (f"The job failed with an internal error ({name}: {exc}). Start it again; if it fails the same "
            f"way, report the job id to the operator.", "Internal")


def _out_of_space(exc: BaseException, free_disk: Callable[[], int | None]) -> bool:
    seen: BaseException | None = exc
    while seen is not None:  # the exception or one it was raised from
        if getattr(seen, "errno", None) == errno.ENOSPC or "No space left on device" in str(seen):
            return True
        seen = seen.__cause__ or seen.__context__
    try:
        free = free_disk()
    except OSError:
        return False
    return free is not None and free < LOW_DISK_SPACE
