"""Users' file workspaces on the local file system: ``<files_dir>/<user dir>/<path>``.

Paths arrive checked (``apicore/file_paths.py``: relative, safe names, no dot-names), so every dot-name
in a workspace is ours: ``.uploads/`` (uploads in progress) and ``.lock``. On top of that, nothing here
follows a symbolic link: every folder on the way and the file itself are looked at with ``lstat``.

An upload streams into ``.uploads/<random>`` and is renamed into place only when complete and within the
quota, so a refused or broken upload leaves nothing behind and readers never see half a file; two
uploads of one path each write their own temporary file, and the last rename wins whole. Renames, deletes
and the final quota check run under the user's lock (``flock`` on ``.lock``: threads and worker processes
alike), so committed files never exceed the quota. Usage is summed by walking the workspace (cheap for the
hundreds of files a workspace holds, not meant for millions).
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import os
import re
import secrets
import shutil
import stat
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import BinaryIO, Iterator

from apicore import errors
from apicore.services import Download

BLOCK = 1024 * 1024  # bytes read from the request per write: an upload's memory
UPLOADS = ".uploads"
LOCK = ".lock"
_SAFE_USER_DIR = re.compile(r"[A-Za-z0-9_-]{1,64}")


@dataclass(frozen=True)
class FileEntry:
    path: str
    size: int
    modified: float  # POSIX time

    def document(self) -> dict:
        stamp = datetime.fromtimestamp(self.modified, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
        return {"path": self.path, "size": self.size, "modified": stamp}


class LocalWorkspaces:
    """Every user's workspace under ``root``, each limited to ``quota`` bytes of files."""

    def __init__(self, root: Path, quota: int):
        self.root = Path(root)
        self.quota = quota

    def user_dir(self, user_id: str) -> Path:
        name = user_id if _SAFE_USER_DIR.fullmatch(user_id) else hashlib.sha256(user_id.encode()).hexdigest()
        return self.root / name

    # -- reading --------------------------------------------------------------------------------------

    def list(self, user_id: str) -> list[FileEntry]:
        """Every file of the user, sorted by path (dot-names and symbolic links left out)."""
        base = self.user_dir(user_id)
        entries = [FileEntry(rel, st.st_size, st.st_mtime) for rel, st in _walk(base, "")]
        return sorted(entries, key=lambda entry: entry.path)

    def file(self, user_id: str, path: str) -> Path:
        """The local file at ``path``: FileNotFound, or FileOperationUnsupported for a folder."""
        target = _resolve(self.user_dir(user_id), path, create=False)
        info = _lstat(target)
        if info is None:
            raise errors.FileNotFound(file=path)
        if stat.S_ISDIR(info.st_mode):
            raise errors.FileOperationUnsupported(f"'{path}' is a folder; list your files with GET /files and "
                                                  "download them one by one.")
        _refuse_non_file(path, info)
        return target

    def download(self, user_id: str, path: str) -> Download:
        local = self.file(user_id, path)
        return Download(media_type="application/octet-stream", path=local, filename=path.rsplit("/", 1)[-1])

    def usage(self, user_id: str) -> int:
        """Bytes of the user's stored files."""
        return sum(st.st_size for _, st in _walk(self.user_dir(user_id), ""))

    # -- writing --------------------------------------------------------------------------------------

    def write(self, user_id: str, path: str, body: BinaryIO, length: int | None) -> FileEntry:
        """Stream ``body`` into a temporary file of the user's local area, then put it in place (``_commit``)
        under the user's lock; the quota counts stored files and uploads in progress."""
        base = self.user_dir(user_id)
        existing = self._existing_size(user_id, path)  # also refuses a folder, a symlink, a file as folder
        used = self.usage(user_id) + _uploads_size(base) - existing
        if length is not None:
            self._check_quota(path, used + length, length)
        uploads = base / UPLOADS
        uploads.mkdir(parents=True, exist_ok=True)
        temp = uploads / secrets.token_hex(12)
        try:
            written = self._stream(body, temp, self.quota - used, path)
            with self._locked(base):
                existing = self._existing_size(user_id, path)
                self._check_quota(path, self.usage(user_id) - existing + written, written)
                return self._commit(user_id, path, temp)
        finally:
            with contextlib.suppress(FileNotFoundError):
                temp.unlink()

    def _commit(self, user_id: str, path: str, temp: Path) -> FileEntry:
        """Put the complete upload ``temp`` at ``path`` (an atomic rename here)."""
        target = _resolve(self.user_dir(user_id), path, create=True)
        os.replace(temp, target)
        info = os.lstat(target)
        return FileEntry(path, info.st_size, info.st_mtime)

    def delete(self, user_id: str, path: str) -> None:
        base = self.user_dir(user_id)
        with self._locked(base):
            target = _resolve(base, path, create=False)
            info = _lstat(target)
            if info is None:
                raise errors.FileNotFound(file=path)
            if stat.S_ISDIR(info.st_mode):
                raise errors.FileOperationUnsupported(f"'{path}' is a folder; delete its files one by one (a "
                                                      "folder goes with its last file).")
            _refuse_non_file(path, info)
            target.unlink()
            _remove_empty_parents(target.parent, base)

    def remove_user(self, user_id: str) -> None:
        shutil.rmtree(self.user_dir(user_id), ignore_errors=True)

    # -- helpers --------------------------------------------------------------------------------------

    def _existing_size(self, user_id: str, path: str) -> int:
        """Size of the file an upload to ``path`` replaces (0 if none); refuses a folder or special file."""
        try:
            target = _resolve(self.user_dir(user_id), path, create=False)
        except errors.FileNotFound:
            return 0  # a folder on the way does not exist yet
        info = _lstat(target)
        if info is None:
            return 0
        if stat.S_ISDIR(info.st_mode):
            raise errors.FileOperationUnsupported(f"'{path}' is a folder; upload to a file path inside it, "
                                                  f"e.g. '{path}/data.tif'.")
        _refuse_non_file(path, info)
        return info.st_size

    def _stream(self, body: BinaryIO, temp: Path, allowance: int, path: str) -> int:
        """``body`` into ``temp`` block by block; StorageQuotaExceeded as soon as it outgrows ``allowance``."""
        written = 0
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        with os.fdopen(fd, "wb") as out:
            while True:
                block = body.read(BLOCK)
                if not block:
                    return written
                written += len(block)
                if written > allowance:
                    self._check_quota(path, self.quota - allowance + written, written)
                out.write(block)

    def _check_quota(self, path: str, total: int, size: int) -> None:
        if total > self.quota:
            raise errors.StorageQuotaExceeded(
                f"Your storage quota of {_human(self.quota)} is exceeded: storing '{path}' ({_human(size)}) would "
                f"bring your files to {_human(total)}. Delete files you no longer need (DELETE /files/{{path}}) "
                "and upload again; nothing of this upload was kept.")

    @contextlib.contextmanager
    def _locked(self, base: Path) -> Iterator[None]:
        base.mkdir(parents=True, exist_ok=True)
        fd = os.open(base / LOCK, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)  # one open file description per holder: excludes threads too
            yield
        finally:
            os.close(fd)


def _uploads_size(base: Path) -> int:
    """Bytes of the uploads in progress in a user's local area (their temporary files)."""
    return sum(st.st_size for _, st in _walk(base / UPLOADS, "", hidden=True))


def _resolve(base: Path, path: str, *, create: bool) -> Path:
    """``base/path``, after checking every folder on the way is a real folder (created with ``create``,
    else FileNotFound when missing); the last name itself is not looked at."""
    names = path.split("/")
    current = base
    for depth, name in enumerate(names[:-1], start=1):
        current = current / name
        info = _lstat(current)
        if info is None:
            if not create:
                raise errors.FileNotFound(file=path)
            with contextlib.suppress(FileExistsError):
                current.mkdir(parents=True)  # parents: the workspace itself on a first upload
            info = os.lstat(current)
        if stat.S_ISLNK(info.st_mode):
            raise errors.FilePathInvalid(reason=f"'{'/'.join(names[:depth])}' is a symbolic link; links are not "
                                                "followed")
        if not stat.S_ISDIR(info.st_mode):
            raise errors.FilePathInvalid(reason=f"'{'/'.join(names[:depth])}' is a file, not a folder")
    return current / names[-1]


def _lstat(path: Path) -> os.stat_result | None:
    try:
        return os.lstat(path)
    except FileNotFoundError:
        return None
    except NotADirectoryError:
        return None


def _refuse_non_file(path: str, info: os.stat_result) -> None:
    if stat.S_ISLNK(info.st_mode):
        raise errors.FilePathInvalid(reason=f"'{path}' is a symbolic link; links are not followed")
    if not stat.S_ISREG(info.st_mode):
        raise errors.FileOperationUnsupported(f"'{path}' is not a regular file.")


def _walk(directory: Path, prefix: str, hidden: bool = False) -> Iterator[tuple[str, os.stat_result]]:
    """(relative path, lstat) of the regular files below ``directory``; no links followed, dot-names skipped
    unless ``hidden``."""
    try:
        entries = list(os.scandir(directory))
    except (FileNotFoundError, NotADirectoryError):
        return
    for entry in entries:
        if entry.name.startswith(".") and not hidden:
            continue
        try:
            info = entry.stat(follow_symlinks=False)
        except FileNotFoundError:
            continue  # deleted meanwhile
        relative = f"{prefix}{entry.name}"
        if stat.S_ISDIR(info.st_mode):
            yield from _walk(Path(entry.path), relative + "/", hidden)
        elif stat.S_ISREG(info.st_mode):
            yield relative, info


def _remove_empty_parents(folder: Path, base: Path) -> None:
    """The spec: folders left empty by a delete go too (up to, not including, the workspace)."""
    while folder != base and base in folder.parents:
        try:
            folder.rmdir()
        except OSError as exc:
            if exc.errno in (errno.ENOTEMPTY, errno.EEXIST):
                return
            raise
        folder = folder.parent


def _human(size: int) -> str:
    for unit in ("bytes", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:,} {unit}" if unit == "bytes" else f"{size:.1f} {unit}"
        size /= 1024
    return str(size)
