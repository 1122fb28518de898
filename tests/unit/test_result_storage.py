"""Result storage: the local results directory (today's behaviour) and an fsspec store (memory://, file://)."""

from __future__ import annotations

import uuid
from pathlib import Path

import fsspec
import pytest

from backend.jobs.storage import (FsspecResultStorage, LocalResultStorage, StorageFailure, open_result_storage)
from backend.settings import load_settings


def write_run(storage, job_id: str, files: dict[str, bytes]) -> tuple[str, Path]:
    run_id, run_dir = storage.new_run(job_id)
    for name, content in files.items():
        (run_dir / name).write_bytes(content)
    return run_id, run_dir


def test_default_settings_give_the_local_results_dir(tmp_path):
    storage = open_result_storage(load_settings(data_dir=tmp_path))
    assert isinstance(storage, LocalResultStorage) and storage.local_root == tmp_path / "jobs"


def test_local_storage_keeps_runs_where_they_were_written(tmp_path):
    storage = LocalResultStorage(tmp_path)
    run_id, run_dir = write_run(storage, "job1", {"result.tif": b"tiff-bytes"})
    assert run_dir == tmp_path / "job1" / run_id and run_id.startswith("run-")
    storage.publish("job1", run_id, run_dir)  # a no-op: the run dir is the store
    assert (run_dir / "result.tif").read_bytes() == b"tiff-bytes"
    assert storage.local_path("job1", run_id, "result.tif") == run_dir / "result.tif"
    assert storage.size("job1", run_id, "result.tif") == 10
    with storage.open("job1", run_id, "result.tif") as f:
        assert f.read() == b"tiff-bytes"
    with pytest.raises(FileNotFoundError):
        storage.local_path("job1", run_id, "missing.tif")
    with pytest.raises(FileNotFoundError):
        storage.local_path("job1", run_id, "../../../secret.key")

    newer, _ = write_run(storage, "job1", {"result.tif": b"new"})
    storage.remove_runs("job1", keep=newer)
    assert [p.name for p in (tmp_path / "job1").iterdir()] == [newer]
    storage.remove_runs("job1")
    assert not (tmp_path / "job1").exists()
    storage.remove_runs("never-ran")  # nothing to do, no error


def test_local_discard_removes_the_run(tmp_path):
    storage = LocalResultStorage(tmp_path)
    run_id, run_dir = write_run(storage, "job1", {"result.tif": b"x"})
    storage.discard("job1", run_id, run_dir)
    assert not run_dir.exists()


def test_fsspec_storage_uploads_then_drops_the_staging_copy(tmp_path):
    url = f"memory://results-{uuid.uuid4().hex}/prefix"
    storage = open_result_storage(load_settings(data_dir=tmp_path, results_url=url))
    assert isinstance(storage, FsspecResultStorage)
    run_id, run_dir = write_run(storage, "job1", {"result.tif": b"0123456789", "quicklook.png": b"png"})
    assert run_dir.is_relative_to(tmp_path / "jobs")  # staged locally
    storage.publish("job1", run_id, run_dir)
    assert not run_dir.exists()
    fs = fsspec.filesystem("memory")
    assert fs.cat_file(f"{url}/job1/{run_id}/result.tif") == b"0123456789"
    assert storage.local_path("job1", run_id, "result.tif") is None
    assert storage.size("job1", run_id, "result.tif") == 10
    with storage.open("job1", run_id, "result.tif") as f:
        f.seek(3)
        assert f.read(4) == b"3456"
    with pytest.raises(FileNotFoundError):
        storage.size("job1", run_id, "missing.tif")

    newer, newer_dir = write_run(storage, "job1", {"result.tif": b"new"})
    storage.publish("job1", newer, newer_dir)
    storage.remove_runs("job1", keep=newer)
    assert [p.rsplit("/", 1)[-1] for p in fs.ls(f"{url}/job1", detail=False)] == [newer]
    storage.remove_runs("job1")
    assert not fs.exists(f"{url}/job1")


def test_fsspec_discard_removes_uploaded_files_and_staging_leftovers(tmp_path):
    url = f"memory://results-{uuid.uuid4().hex}"
    storage = FsspecResultStorage(url, {}, tmp_path)
    run_id, run_dir = write_run(storage, "job1", {"result.tif": b"x"})
    storage.publish("job1", run_id, run_dir)
    storage.discard("job1", run_id, run_dir)  # e.g. the job was stopped between upload and finish
    assert not fsspec.filesystem("memory").exists(f"{url}/job1/{run_id}")

    crashed, crashed_dir = write_run(storage, "job1", {"result.tif": b"partial"})  # a runner died here
    storage.remove_runs("job1", keep="run-other")
    assert not crashed_dir.exists()


def test_file_url_creates_directories(tmp_path):
    storage = FsspecResultStorage(f"file://{tmp_path / 'store'}", {}, tmp_path / "staging")
    run_id, run_dir = write_run(storage, "job1", {"result.nc": b"netcdf"})
    storage.publish("job1", run_id, run_dir)
    assert (tmp_path / "store" / "job1" / run_id / "result.nc").read_bytes() == b"netcdf"


def test_failed_upload_is_a_storage_failure_and_leaves_nothing(tmp_path):
    url = f"memory://results-{uuid.uuid4().hex}"
    storage = FsspecResultStorage(url, {}, tmp_path)
    run_id, run_dir = write_run(storage, "job1", {"a.tif": b"a", "b.tif": b"b"})
    fs = storage.fs
    real_put = fs.put_file
    calls = []

    def failing_put(lpath, rpath, **kwargs):
        calls.append(rpath)
        if len(calls) == 2:
            raise ConnectionError("store unreachable")
        return real_put(lpath, rpath, **kwargs)

    fs.put_file = failing_put
    try:
        with pytest.raises(StorageFailure, match="store unreachable"):
            storage.publish("job1", run_id, run_dir)
    finally:
        del fs.put_file
    assert not fs.exists(f"{url}/job1/{run_id}")  # the first file's upload was removed again


def test_unknown_protocol_fails_at_start(tmp_path):
    with pytest.raises(ValueError, match="results_url"):
        open_result_storage(load_settings(data_dir=tmp_path, results_url="nosuchproto://bucket/x"))


def test_storage_options_come_from_the_environment_as_json(tmp_path, monkeypatch):
    monkeypatch.setenv("OPENEO_BACKEND_RESULTS_STORAGE_OPTIONS", '{"endpoint_url": "http://127.0.0.1:9000"}')
    settings = load_settings(data_dir=tmp_path)
    assert settings.results_storage_options == {"endpoint_url": "http://127.0.0.1:9000"}


def test_a_previous_run_that_survives_its_removal_is_removed_again(tmp_path, monkeypatch):
    """An object store may acknowledge a delete and still list the objects: remove_runs says so and the
    runner tries again, so a re-run job keeps exactly its last run."""
    from types import SimpleNamespace

    from backend.jobs import runner

    url = f"memory://results-{uuid.uuid4().hex}"
    storage = FsspecResultStorage(url, {}, tmp_path)
    old, old_dir = write_run(storage, "job1", {"result.tif": b"old"})
    storage.publish("job1", old, old_dir)
    new, new_dir = write_run(storage, "job1", {"result.tif": b"new"})
    storage.publish("job1", new, new_dir)

    remove, ignored = storage._remove_remote, []

    def ignore_the_first_delete(path):
        ignored.append(path) if not ignored else remove(path)

    monkeypatch.setattr(storage, "_remove_remote", ignore_the_first_delete)
    with pytest.raises(OSError, match="still stored after removal"):
        storage.remove_runs("job1", keep=new)

    ignored.clear()
    monkeypatch.setattr(runner, "REMOVAL_RETRY_PAUSES", (0.0,))
    runner.JobRunner._remove_previous_runs(SimpleNamespace(results=storage), "job1", new)
    assert len(ignored) == 1  # the runner's first attempt failed
    assert fsspec.filesystem("memory").ls(f"{url}/job1", detail=False) == [f"{url.removeprefix('memory:/')}/job1/{new}"]
