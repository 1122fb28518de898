"""Messages of job failures that are not openEO errors: they must say what to change."""

from __future__ import annotations

import errno

from distributed.scheduler import KilledWorker

from backend.jobs.failures import describe_failure
from backend.settings import load_settings


def test_killed_worker_names_the_limit_and_the_job_size(tmp_path):
    settings = load_settings(data_dir=tmp_path, dask_memory_limit="3GiB")
    message, code = describe_failure(KilledWorker("task-1", None, 3), settings, lambda: 2_000_000_000)
    assert code == "WorkerMemoryExceeded"
    assert "memory limit 3GiB" in message and "2,000,000,000 values (7.5 GiB" in message
    assert "smaller extent" in message


def test_size_lookup_failure_still_gives_a_message(tmp_path):
    def broken():
        raise RuntimeError("catalog down")

    message, code = describe_failure(MemoryError(), load_settings(data_dir=tmp_path), broken)
    assert code == "WorkerMemoryExceeded" and "loads" not in message


def test_disk_full_and_unknown_errors(tmp_path):
    settings = load_settings(data_dir=tmp_path)
    assert describe_failure(OSError(errno.ENOSPC, "No space left"), settings)[1] == "StorageFailure"
    message, code = describe_failure(ValueError("boom"), settings)
    assert code == "Internal" and "ValueError: boom" in message and "report the job id" in message


class CPLE_AppDefinedError(Exception):
    """What rasterio raises when GDAL cannot write a GeoTIFF to a full disk (no errno)."""


def test_a_writer_error_on_a_full_disk_is_a_storage_failure(tmp_path):
    settings = load_settings(data_dir=tmp_path)
    gdal = CPLE_AppDefinedError("TIFFWriteDirectoryTagData:IO error writing tag data")
    message, code = describe_failure(gdal, settings, free_disk=lambda: 4096)
    assert code == "StorageFailure" and "ran out of disk space" in message
    assert describe_failure(gdal, settings, free_disk=lambda: 10 * 2**30)[1] == "Internal"  # plenty of space
    try:
        try:
            raise OSError(errno.ENOSPC, "No space left on device")
        except OSError as exc:
            raise RuntimeError("writing block 3 failed") from exc
    except RuntimeError as wrapped:
        assert describe_failure(wrapped, settings, free_disk=lambda: None)[1] == "StorageFailure"
