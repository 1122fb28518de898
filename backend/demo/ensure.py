"""Generate the demo catalog once, atomically, and only again when the generator changed.

The catalog is built in a sibling temp directory and renamed into place, so readers never see a
half-written catalog, even if the process dies mid-way. A file lock serialises concurrent
starters (e.g. several gunicorn workers): the first builds, the others find it done.
"""

from __future__ import annotations

import fcntl
import hashlib
import logging
import os
import shutil
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from backend.demo.spec import GENERATOR_VERSION

log = logging.getLogger(__name__)

MARKER = ".demo-version"
CATALOG_FILE = "catalog.json"


def generator_fingerprint() -> str:
    """Version constant + hash of this package's sources: any code change regenerates."""
    h = hashlib.sha256(GENERATOR_VERSION.encode())
    for src in sorted(Path(__file__).parent.glob("*.py")):
        h.update(src.name.encode())
        h.update(src.read_bytes())
    return f"{GENERATOR_VERSION}-{h.hexdigest()[:16]}"


def _is_current(dest: Path, fingerprint: str) -> bool:
    try:
        return (dest / MARKER).read_text().strip() == fingerprint and (dest / CATALOG_FILE).is_file()
    except OSError:
        return False


@contextmanager
def _locked(dest: Path) -> Iterator[None]:
    lock_path = dest.parent / f".{dest.name}.lock"
    with open(lock_path, "a+") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _remove_leftovers(dest: Path) -> None:
    """Temp/old dirs of earlier runs that crashed (safe: we hold the lock)."""
    for stale in dest.parent.glob(f".{dest.name}.tmp-*"):
        shutil.rmtree(stale, ignore_errors=True)
    for stale in dest.parent.glob(f".{dest.name}.old-*"):
        shutil.rmtree(stale, ignore_errors=True)


def ensure_built(dest: Path, fingerprint: str, build: Callable[[Path], object]) -> Path:
    """Make `dest` hold a complete build stamped with `fingerprint`; returns dest/catalog.json.

    `build(tmp_dir)` must write the whole catalog into tmp_dir. An existing `dest` that is not
    ours (no marker file) and not empty is refused rather than deleted.
    """
    dest = Path(dest).absolute()
    if _is_current(dest, fingerprint):  # fast path, no lock needed
        return dest / CATALOG_FILE
    dest.parent.mkdir(parents=True, exist_ok=True)
    with _locked(dest):
        if _is_current(dest, fingerprint):  # someone else built it while we waited
            return dest / CATALOG_FILE
        if dest.exists() and not (dest / MARKER).exists() and any(dest.iterdir()):
            raise RuntimeError(f"{dest} exists and is not a generated demo catalog; not replacing it")
        _remove_leftovers(dest)
        tmp = dest.parent / f".{dest.name}.tmp-{uuid.uuid4().hex}"
        started = time.monotonic()
        try:
            build(tmp)
            (tmp / MARKER).write_text(fingerprint + "\n")  # written last: marks completeness
            old = None
            if dest.exists():
                old = dest.parent / f".{dest.name}.old-{uuid.uuid4().hex}"
                os.rename(dest, old)
            os.rename(tmp, dest)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
        log.info("demo catalog generated in %s (%.1f s)", dest, time.monotonic() - started)
    return dest / CATALOG_FILE
