"""The root of the UDF sandbox: mounts in the fork server's own mount namespace, then chroot.

Standard library only (ctypes for mount(2)): worker.py calls ``enter_jail`` before importing anything
a UDF may use."""

from __future__ import annotations

import ctypes
import os
import sys

DEVICES = ("null", "zero", "random", "urandom")
MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC, MS_REMOUNT = 1, 2, 4, 8, 32
MS_BIND, MS_REC, MS_PRIVATE = 4096, 16384, 1 << 18
PR_SET_NO_NEW_PRIVS = 38
libc = ctypes.CDLL(None, use_errno=True)


def _mount(source: str | None, target: str, fstype: str | None, flags: int, data: str | None = None) -> None:
    encode = lambda text: None if text is None else text.encode()  # noqa: E731
    if libc.mount(encode(source), encode(target), encode(fstype), flags, encode(data)) != 0:
        errno = ctypes.get_errno()
        raise OSError(errno, f"mount {source} on {target}: {os.strerror(errno)}")


def _read_only_paths() -> list[str]:
    """The Python installation (interpreter, standard library, site-packages) and /usr: nothing else of
    the host (no data directories, no /etc, no /home, no /root beyond the interpreter)."""
    candidates = {"/usr", sys.prefix, sys.base_prefix, sys.exec_prefix}
    candidates.update(path for path in sys.path if os.path.isdir(path))
    real = sorted({os.path.realpath(path) for path in candidates} | candidates)
    chosen: list[str] = []
    for path in real:
        if os.path.islink(path) or not os.path.isdir(path):
            continue
        if not any(path == kept or path.startswith(kept.rstrip("/") + "/") for kept in chosen):
            chosen.append(path)
    return chosen


def enter_jail(root: str, spool_mb: int) -> None:
    _mount(None, "/", None, MS_REC | MS_PRIVATE)  # nothing we mount here reaches the host
    os.makedirs(root, exist_ok=True)
    _mount("tmpfs", root, "tmpfs", MS_NOSUID | MS_NODEV, "size=64m,mode=755")
    for path in _read_only_paths():
        target = root + path
        os.makedirs(target, exist_ok=True)
        _mount(path, target, None, MS_BIND | MS_REC)
        _mount(None, target, None, MS_BIND | MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV)
    for link in ("/bin", "/lib", "/lib64", "/sbin"):  # usr-merged systems: symlinks into /usr
        if os.path.islink(link):
            os.symlink(os.readlink(link), root + link)
    os.makedirs(root + "/dev")
    for device in DEVICES:
        open(f"{root}/dev/{device}", "w").close()
        _mount(f"/dev/{device}", f"{root}/dev/{device}", None, MS_BIND)
    os.makedirs(root + "/proc")
    _mount("proc", root + "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC)  # this PID namespace's only
    # The only writable place: chunks' directories (each its uid's alone), in memory of a bounded size,
    # so files a UDF writes can fill neither the host's disk nor its memory.
    os.makedirs(root + "/spool")
    options = f"size={spool_mb}m,mode=711"
    try:  # huge pages: a 50 MB chunk is written in about half the time
        _mount("tmpfs", root + "/spool", "tmpfs", MS_NOSUID | MS_NODEV, options + ",huge=within_size")
    except OSError:  # a kernel without transparent huge pages for tmpfs
        _mount("tmpfs", root + "/spool", "tmpfs", MS_NOSUID | MS_NODEV, options)
    # Not writable: chunks would meet each other's files there. It exists already when the Python
    # installation lives under /tmp (a checkout in /tmp: its binds made the directory).
    os.makedirs(root + "/tmp", mode=0o755, exist_ok=True)
    os.chmod(root + "/tmp", 0o755)
    os.chroot(root)
    os.chdir("/")
