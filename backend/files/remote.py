"""Users' file workspaces in any fsspec store (``files_url``: ``s3://bucket/prefix``, ...), with the rules of
the local ones (``workspace.py``): ``<files_url>/<user dir>/<path>``.

``files_dir`` stays the local area of each user: uploads stream into a temporary file there (the quota is
checked while streaming, as locally), and only a complete upload within the quota is put into the store in
one ``put_file`` (an object appears whole or not at all), under the user's lock. Downloads stream from the
store. Processes (``load_uploaded_files``) read a local copy kept in ``<files_dir>/<user dir>/.reads/``,
fetched once per version of a file (size, modification time, ETag) and removed with the file. The lock is a
local ``flock``: API servers on several hosts writing one user's workspace at once may each pass the final
quota check (the store has no lock to share).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import secrets
import threading
from datetime import datetime
from pathlib import Path
from typing import Any

from apicore import errors
from apicore.services import Download
from backend.files.workspace import FileEntry, LocalWorkspaces

READ_BLOCK = 4 * 1024 * 1024
READS = ".reads"


class FsspecWorkspaces(LocalWorkspaces):
    """Files in the store at ``url``; ``local_root`` (files_dir) holds uploads in progress, locks, read copies."""

    def __init__(self, url: str, options: dict[str, Any], local_root: Path, quota: int):
        import fsspec

        super().__init__(local_root, quota)
        self.url = url.rstrip("/")
        protocol = fsspec.core.split_protocol(self.url)[0] or "file"
        try:  # fail at start-up when the protocol's package is missing
            fsspec.get_filesystem_class(protocol)
        except (ImportError, ValueError) as exc:
            hint = " (install the `s3` extra)" if protocol in ("s3", "s3a") else ""
            raise ValueError(f"files_url {url!r}: {exc}{hint}") from exc
        self._options = dict(options)
        if protocol in ("file", "local"):
            self._options.setdefault("auto_mkdir", True)
        self._fs = None
        self._root = ""
        self._lock = threading.Lock()

    @property
    def fs(self):
        """Created on first use, in the process that uses it (no S3 client crosses gunicorn's fork)."""
        with self._lock:
            if self._fs is None:
                from fsspec.core import url_to_fs

                self._fs, root = url_to_fs(self.url, **self._options)
                self._root = root.rstrip("/")
            return self._fs

    def _remote(self, user_id: str, path: str = "") -> str:
        fs = self.fs
        user = self.user_dir(user_id).name
        remote = "/".join(p for p in (self._root, user, path) if p)
        fs.invalidate_cache(remote)  # listings are cached; another process may have written
        return remote

    # -- reading --------------------------------------------------------------------------------------

    def list(self, user_id: str) -> list[FileEntry]:
        base = self._remote(user_id)
        self.fs.invalidate_cache()
        try:
            found = self.fs.find(base, detail=True)
        except FileNotFoundError:
            return []
        entries = []
        for name, info in found.items():
            relative = name[len(base):].lstrip("/")
            if info.get("type") == "file" and relative and not any(p.startswith(".") for p in relative.split("/")):
                entries.append(FileEntry(relative, int(info.get("size") or 0), _modified(info)))
        return sorted(entries, key=lambda entry: entry.path)

    def usage(self, user_id: str) -> int:
        return sum(entry.size for entry in self.list(user_id))

    def _info(self, user_id: str, path: str) -> dict:
        """The store's info of a file; FileNotFound, or FileOperationUnsupported for a folder (a prefix)."""
        remote = self._remote(user_id, path)
        try:
            info = self.fs.info(remote)
        except FileNotFoundError:
            raise errors.FileNotFound(file=path) from None
        if info.get("type") != "file":
            raise errors.FileOperationUnsupported(f"'{path}' is a folder; address its files one by one.")
        return info

    def download(self, user_id: str, path: str) -> Download:
        info = self._info(user_id, path)
        handle = self.fs.open(self._remote(user_id, path), "rb", block_size=READ_BLOCK)
        chunks = iter(lambda: handle.read(READ_BLOCK), b"")
        return Download(media_type="application/octet-stream", chunks=chunks, size=int(info.get("size") or 0),
                        filename=path.rsplit("/", 1)[-1], cleanup=handle.close)

    def file(self, user_id: str, path: str) -> Path:
        """A local copy of the file for processes, fetched once per version of it."""
        info = self._info(user_id, path)
        tag = info.get("ETag") or info.get("etag") or ""  # a same-size replacement within the same second too
        version = f"{path}\0{info.get('size')}\0{_modified(info)}\0{tag}"
        reads = self.user_dir(user_id) / READS
        digest = hashlib.sha256(path.encode()).hexdigest()[:32]
        local = reads / f"{digest}-{hashlib.sha256(version.encode()).hexdigest()[:16]}{Path(path).suffix}"
        if local.is_file():
            return local
        reads.mkdir(parents=True, exist_ok=True)
        temp = reads / f".{secrets.token_hex(8)}"
        try:
            self.fs.get_file(self._remote(user_id, path), str(temp))
            os.replace(temp, local)  # readers see a whole copy or none
        finally:
            with contextlib.suppress(FileNotFoundError):
                temp.unlink()
        for old in reads.glob(f"{digest}-*"):  # older versions of this file
            if old != local:
                with contextlib.suppress(FileNotFoundError):
                    old.unlink()
        return local

    # -- writing --------------------------------------------------------------------------------------

    def _existing_size(self, user_id: str, path: str) -> int:
        names = path.split("/")
        for depth in range(1, len(names)):  # no file may stand where a folder of the path is
            folder = "/".join(names[:depth])
            if self.fs.isfile(self._remote(user_id, folder)):
                raise errors.FilePathInvalid(reason=f"'{folder}' is a file, not a folder")
        remote = self._remote(user_id, path)
        try:
            info = self.fs.info(remote)
        except FileNotFoundError:
            return 0
        if info.get("type") != "file":
            raise errors.FileOperationUnsupported(f"'{path}' is a folder; upload to a file path inside it, "
                                                  f"e.g. '{path}/data.tif'.")
        return int(info.get("size") or 0)

    def _commit(self, user_id: str, path: str, temp: Path) -> FileEntry:
        remote = self._remote(user_id, path)
        try:
            self.fs.put_file(str(temp), remote)
        except Exception as exc:  # noqa: BLE001 - every client error (network, auth, bucket) means the same
            raise errors.StorageFailure(f"The file could not be stored ({type(exc).__name__}: {exc}). Try again "
                                        "later; if it persists, tell the operator (files_url).") from exc
        info = self.fs.info(self._remote(user_id, path))
        return FileEntry(path, int(info.get("size") or 0), _modified(info))

    def delete(self, user_id: str, path: str) -> None:
        with self._locked(self.user_dir(user_id)):
            self._info(user_id, path)
            self.fs.rm_file(self._remote(user_id, path))
            self._forget_copies(user_id, path)

    def remove_user(self, user_id: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.fs.rm(self._remote(user_id), recursive=True)
        super().remove_user(user_id)

    def _forget_copies(self, user_id: str, path: str) -> None:
        digest = hashlib.sha256(path.encode()).hexdigest()[:32]
        for copy in (self.user_dir(user_id) / READS).glob(f"{digest}-*"):
            with contextlib.suppress(FileNotFoundError):
                copy.unlink()


def _modified(info: dict) -> float:
    """POSIX time of a store's file info (s3fs: LastModified, local: mtime, others: created/modified)."""
    for key in ("LastModified", "mtime", "last_modified", "modified", "created"):
        value = info.get(key)
        if isinstance(value, datetime):
            return value.timestamp()
        if isinstance(value, (int, float)):
            return float(value)
        if isinstance(value, str):
            with contextlib.suppress(ValueError):
                return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
    return 0.0

