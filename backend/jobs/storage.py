"""Where published batch-job results live: the local results directory (default) or any fsspec URL.

Layout in both: ``<root>/<job id>/<run id>/<file>``. The runner always writes a run into a local
directory first (the writers need local files: GDAL, the quicklook, the checksums):

- ``LocalResultStorage``: that directory *is* the store, so publishing is a no-op and downloads are
  plain ``send_file`` (werkzeug's HEAD, Range, ETag).
- ``FsspecResultStorage`` (``results_url``: ``s3://bucket/prefix``, ``memory://x``, ``file:///path``, ...):
  the local run dir under ``results_dir`` is only staging; ``publish`` uploads every file and then deletes
  the local copy. The runner calls it *before* ``JobStore.finish`` makes the run visible, so a download
  never sees a partial upload; downloads are streamed back through the API (see ``api/signed_results.py``).
"""

from __future__ import annotations

import logging
import secrets
import shutil
import threading
import time
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any, BinaryIO

log = logging.getLogger(__name__)
READ_BLOCK = 4 * 1024 * 1024  # bytes fetched per remote read (bounds a download's memory)


class StorageFailure(Exception):
    """The result store could not take a run (upload failed): the job ends in error."""


def new_run_id() -> str:
    return f"run-{int(time.time())}-{secrets.token_hex(4)}"


class ResultStorage(ABC):
    """The published runs of every job, addressed by (job id, run id, file name)."""

    def __init__(self, local_root: Path):
        self.local_root = local_root  # the runner's local run directories (the store itself when local)

    def new_run(self, job_id: str) -> tuple[str, Path]:
        """A fresh run id and the local directory the runner writes that run into."""
        run_id = new_run_id()
        path = self.local_root / job_id / run_id
        path.mkdir(parents=True)
        return run_id, path

    @abstractmethod
    def publish(self, job_id: str, run_id: str, local_dir: Path) -> None:
        """Put the finished run's files into the store (raises StorageFailure)."""

    @abstractmethod
    def discard(self, job_id: str, run_id: str, local_dir: Path) -> None:
        """Forget a run that will not be published (stopped, failed, lost its lease): local and stored files."""

    @abstractmethod
    def local_path(self, job_id: str, run_id: str, name: str) -> Path | None:
        """The stored file on the local file system (served with send_file), None for a remote store.

        Raises FileNotFoundError when a local store lacks the file."""

    @abstractmethod
    def size(self, job_id: str, run_id: str, name: str) -> int:
        """Bytes of a stored file; FileNotFoundError when missing."""

    @abstractmethod
    def open(self, job_id: str, run_id: str, name: str) -> BinaryIO:
        """A seekable binary file object of a stored file; FileNotFoundError when missing."""

    @abstractmethod
    def remove_runs(self, job_id: str, keep: str | None = None) -> None:
        """Delete a job's runs except ``keep`` (all of them, and the job itself, when keep is None)."""

    def _remove_local_runs(self, job_id: str, keep: str | None) -> None:
        job_dir = self.local_root / job_id
        if not job_dir.is_dir():
            return
        if keep is None:
            shutil.rmtree(job_dir, ignore_errors=True)
            return
        for run in job_dir.iterdir():
            if run.name != keep:
                shutil.rmtree(run, ignore_errors=True)


class LocalResultStorage(ResultStorage):
    """``<results_dir>/<job id>/<run id>/``: today's default, where the runner's run dir is the store."""

    def publish(self, job_id: str, run_id: str, local_dir: Path) -> None:
        pass  # the files are where downloads read them; JobStore.finish makes them visible

    def discard(self, job_id: str, run_id: str, local_dir: Path) -> None:
        shutil.rmtree(local_dir, ignore_errors=True)

    def local_path(self, job_id: str, run_id: str, name: str) -> Path:
        path = self.local_root / job_id / run_id / name
        # names come from the published assets, never from the client; this guards the layout anyway
        if path.parent.parent.parent != self.local_root or not path.is_file():
            raise FileNotFoundError(name)
        return path

    def size(self, job_id: str, run_id: str, name: str) -> int:
        return self.local_path(job_id, run_id, name).stat().st_size

    def open(self, job_id: str, run_id: str, name: str) -> BinaryIO:
        return self.local_path(job_id, run_id, name).open("rb")

    def remove_runs(self, job_id: str, keep: str | None = None) -> None:
        self._remove_local_runs(job_id, keep)


class FsspecResultStorage(ResultStorage):
    """Any fsspec file system; ``local_root`` only stages runs until ``publish`` uploads them."""

    def __init__(self, url: str, options: dict[str, Any], local_root: Path):
        import fsspec

        super().__init__(local_root)
        self.url = url.rstrip("/")
        protocol = fsspec.core.split_protocol(self.url)[0] or "file"
        try:  # fail at start-up, not at the first job, when the protocol's package is missing
            fsspec.get_filesystem_class(protocol)
        except (ImportError, ValueError) as exc:
            hint = " (install the `s3` extra: pip install 'openeo-backend-federation[s3]')" if protocol in (
                "s3", "s3a") else ""
            raise ValueError(f"results_url {url!r}: {exc}{hint}") from exc
        self.protocol = protocol
        self._options = dict(options)
        if protocol in ("file", "local"):
            self._options.setdefault("auto_mkdir", True)  # object stores need no directories; disks do
        self._fs = None
        self._root = ""
        self._lock = threading.Lock()

    @property
    def fs(self):
        """Created on first use, in the process that uses it (gunicorn workers and the runner fork from
        ``serve``; an S3 client with its event loop must not cross a fork)."""
        with self._lock:
            if self._fs is None:
                from fsspec.core import url_to_fs

                self._fs, self._root = url_to_fs(self.url, **self._options)
                self._root = self._root.rstrip("/")
            return self._fs

    def _path(self, *parts: str) -> str:
        self.fs  # noqa: B018 - creates the file system and with it _root
        return "/".join([self._root, *parts]) if self._root else "/".join(parts)

    def publish(self, job_id: str, run_id: str, local_dir: Path) -> None:
        files = sorted(p for p in local_dir.rglob("*") if p.is_file())
        try:
            for path in files:
                self.fs.put_file(str(path), self._path(job_id, run_id, path.relative_to(local_dir).as_posix()))
        except Exception as exc:  # noqa: BLE001 - every client error (network, auth, bucket) means the same
            self._remove_remote(self._path(job_id, run_id))
            raise StorageFailure(f"The results could not be uploaded to the {self.protocol} result store "
                                 f"({type(exc).__name__}: {exc}). Try again later; if it persists, tell the "
                                 "operator (results_url, results_storage_options).") from exc
        shutil.rmtree(local_dir, ignore_errors=True)

    def discard(self, job_id: str, run_id: str, local_dir: Path) -> None:
        shutil.rmtree(local_dir, ignore_errors=True)
        try:  # an upload may have finished before the job was lost
            self._remove_remote(self._path(job_id, run_id))
        except Exception:  # noqa: BLE001 - leftovers go with the next remove_runs of the job
            log.warning("could not remove discarded run %s/%s from the result store", job_id, run_id,
                        exc_info=True)

    def local_path(self, job_id: str, run_id: str, name: str) -> None:
        return None

    def size(self, job_id: str, run_id: str, name: str) -> int:
        size = self.fs.size(self._path(job_id, run_id, name))
        if size is None:
            raise FileNotFoundError(name)
        return int(size)

    def open(self, job_id: str, run_id: str, name: str) -> BinaryIO:
        return self.fs.open(self._path(job_id, run_id, name), "rb", block_size=READ_BLOCK)

    def remove_runs(self, job_id: str, keep: str | None = None) -> None:
        """Remote runs through the store (raises when it is unreachable: the caller retries), plus staging
        leftovers of this job's crashed runs."""
        job_path = self._path(job_id)
        if keep is None:
            self._remove_remote(job_path)
        else:
            self.fs.invalidate_cache(job_path)  # listings are cached; another process may have uploaded
            try:
                runs = self.fs.ls(job_path, detail=False)
            except FileNotFoundError:
                runs = []
            for run in runs:
                if run.rstrip("/").rsplit("/", 1)[-1] != keep:
                    self._remove_remote(run)
            self.fs.invalidate_cache(job_path)
            left = [run for run in self.fs.ls(job_path, detail=False) if run.rstrip("/").rsplit("/", 1)[-1] != keep]
            if left:  # an object store may answer a delete before every object is gone: the caller retries
                raise OSError(f"runs of job {job_id} still stored after removal: {left}")
        self._remove_local_runs(job_id, None)  # staging is never needed once a run is published

    def _remove_remote(self, path: str) -> None:
        self.fs.invalidate_cache(path)
        try:
            self.fs.rm(path, recursive=True)
        except FileNotFoundError:
            pass
        self.fs.invalidate_cache(path)


def open_result_storage(settings: Any) -> ResultStorage:
    """The store the settings name: ``results_url`` when set, else the local ``results_dir``."""
    local_root = settings.resolved_results_dir
    if settings.results_url:
        return FsspecResultStorage(settings.results_url, settings.results_storage_options, local_root)
    return LocalResultStorage(local_root)
