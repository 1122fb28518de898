"""The server side of Python UDFs: hands chunks to the sandboxed fork server (worker.py) and waits.

One fork server per server process, started on first use (in the process that uses it: a forked copy
of this object is never reused) and shared by its threads: requests are written under a lock, one
reader thread hands each answer to the thread waiting for it. A chunk travels as files in a directory
of the spool (values as .npy, labels as JSON), never as pickles; the UDF's code and context as JSON.

Failures of a chunk end with ``UdfFailed`` quoting the last lines of the UDF's traceback, or naming
the limit it hit (memory, CPU seconds, wall-clock time) and the setting that sets it.
"""

from __future__ import annotations

import atexit
import errno
import itertools
import json
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path

from apicore import errors
from backend.processing.udf import worker
from backend.processing.udf.chunk_codec import decode_chunk, encode_chunk

log = logging.getLogger(__name__)

WORKER = Path(worker.__file__).resolve()
START_TIMEOUT = 60.0  # seconds for the fork server to build its root and import its libraries
TRACEBACK_LINES = 12  # of the UDF's traceback, quoted in the error
# A uid per sandboxed process: UID_BASE + (server pid % 1000) * 2**22 + the process's pid in its namespace
# (PIDs stay below 2**22, Linux's largest pid_max), all below 2**32 - 1.
UID_BASE = 1_000_000
SIGXCPU = 24


@dataclass(frozen=True)
class UdfLimits:
    memory: int  # bytes a chunk may allocate
    cpu: float  # CPU seconds per chunk
    timeout: float  # wall-clock seconds per chunk
    spool_mb: int = 2048  # the fork server's exchange space (its first chunk's setting counts)


class SandboxUnavailable(RuntimeError):
    pass


class ForkServerClient:
    def __init__(self, spool_mb: int) -> None:
        self.owner_pid = os.getpid()  # a forked copy of this process must not stop our server
        self.spool_mb = spool_mb
        self.base = Path(tempfile.mkdtemp(prefix="openeo-udf-"))  # mount points only: the server's root
        (self.base / "root").mkdir()
        self._ids = itertools.count()
        self._lock = threading.Lock()
        self._waiting: dict[str, tuple[threading.Event, dict]] = {}
        try:
            self.process = self._start()
        except BaseException:
            shutil.rmtree(self.base, ignore_errors=True)
            raise
        self._reader = threading.Thread(target=self._read, name="udf-fork-server", daemon=True)
        self._reader.start()
        atexit.register(self.close)

    def _start(self) -> subprocess.Popen:
        # Root is needed for a uid per chunk (without it, chunks could reach each other and the server).
        if os.geteuid() != 0:
            raise SandboxUnavailable("the UDF sandbox needs the server to run as root (namespaces, a uid per chunk)")
        unshare = shutil.which("unshare")
        if unshare is None:
            raise SandboxUnavailable("the `unshare` command (util-linux) is not installed")
        namespaces = ["--net", "--mount", "--pid", "--ipc", "--uts", "--fork", "--kill-child"]
        uid_base = UID_BASE + (os.getpid() % 1000) * 2**22
        command = [unshare, *namespaces, sys.executable, "-I", str(WORKER), str(self.base), str(uid_base),
                   str(self.spool_mb)]
        process = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                   env=dict(worker.MINIMAL_ENV), cwd=self.base, close_fds=True)
        ready = _read_line_with_timeout(process, START_TIMEOUT)
        if not ready or not json.loads(ready).get("ready"):
            process.kill()
            stderr = process.stderr.read().decode(errors="replace")[-2000:] if process.stderr else ""
            raise SandboxUnavailable(f"the UDF sandbox did not start: {stderr.strip() or 'no answer'}")
        threading.Thread(target=_drain, args=(process.stderr,), daemon=True).start()
        # The spool is a tmpfs in the server's mount namespace, which `unshare` itself shares.
        self.spool = Path(f"/proc/{process.pid}/root") / str(self.base / "root" / "spool").lstrip("/")
        return process

    def alive(self) -> bool:
        return self.process.poll() is None

    def run(self, code: str, context: object, cube, limits: UdfLimits, session: str | None = None,
            geometries: dict | None = None):
        """The UDF's result cube for ``cube`` (an xarray.DataArray) and the geometries it returned (a vector
        cube's, ``geometries``: chunk_codec.encode_geometries) or None; chunks of one ``session`` may
        share a sandboxed process (no session: a process of its own)."""
        request_id = f"c{next(self._ids)}"
        workdir = self.spool / request_id
        try:
            workdir.mkdir(mode=0o700)
            try:
                encode_chunk(cube, str(workdir), "input")
                if geometries is not None:
                    (workdir / "input-geometries.json").write_text(json.dumps(geometries))
                (workdir / "request.json").write_text(json.dumps({"code": code, "context": context}))
            except OSError as exc:
                if exc.errno != errno.ENOSPC:
                    raise
                raise errors.UdfFailed(f"The UDF sandbox has no room for this chunk ({self.spool_mb} MiB, setting "
                                       "udf_spool_mb, shared by the chunks running at once); try again, or "
                                       "make the request smaller.") from None
            event, answer = threading.Event(), {}
            self._waiting[request_id] = (event, answer)
            message = {"id": request_id, "dir": request_id, "session": session or request_id,
                       "memory": limits.memory, "cpu": limits.cpu, "timeout": limits.timeout}
            with self._lock:
                self.process.stdin.write((json.dumps(message) + "\n").encode())
                self.process.stdin.flush()
            if not event.wait(limits.timeout + 30) or not answer:
                raise errors.UdfFailed("The UDF sandbox stopped answering; try again.")
            return _result(workdir, answer, limits)
        finally:
            self._waiting.pop(request_id, None)
            shutil.rmtree(workdir, ignore_errors=True)

    def _read(self) -> None:
        for line in self.process.stdout:
            try:
                answer = json.loads(line)
            except ValueError:
                continue
            event, slot = self._waiting.get(answer.get("id"), (None, None))
            if event is not None:
                slot.update(answer)
                event.set()
        for event, _ in list(self._waiting.values()):  # the server died: wake everyone (empty answer)
            event.set()

    def close(self) -> None:
        """Stop the fork server (its namespace goes with it) and remove the spool."""
        if os.getpid() != self.owner_pid:
            return
        try:
            if self.process.poll() is None:
                self.process.kill()
                self.process.wait(5)
        finally:
            shutil.rmtree(self.base, ignore_errors=True)


def _result(workdir: Path, answer: dict, limits: UdfLimits):
    if answer.get("exit") == 0 and (workdir / "output.npy").exists():
        returned = workdir / "output-geometries.json"
        return decode_chunk(str(workdir), "output"), (_read_json(returned) if returned.exists() else None)
    failure = _read_json(workdir / "error.json")
    if answer.get("timed_out"):
        raise errors.UdfFailed(f"The UDF ran longer than {limits.timeout:g} s on one chunk and was stopped "
                               "(setting udf_timeout). Make it faster or the request smaller.")
    if answer.get("exit") == -SIGXCPU:
        raise errors.UdfFailed(f"The UDF used more than {limits.cpu:g} CPU seconds on one chunk and was stopped "
                               "(setting udf_cpu_seconds). Make it faster or the request smaller.")
    if failure.get("kind") == "memory" or (answer.get("exit") == -9 and not failure):
        raise errors.UdfFailed(f"The UDF needed more memory than the {limits.memory / 2**20:g} MiB a chunk may use "
                               f"(setting udf_memory_mb). Make the request smaller.{_quote(failure)}")
    if failure.get("kind") == "exception":
        raise errors.UdfFailed(f"The UDF raised an error:\n{_quote_lines(failure['traceback'])}")
    stderr = (workdir / "stderr.txt").read_text(errors="replace")[-1000:] if (workdir / "stderr.txt").exists() else ""
    log.warning("UDF chunk ended with %s: %s %s", answer, failure, stderr)
    raise errors.UdfFailed(f"The UDF ended without a result (exit status {answer.get('exit')}).{_quote(failure)}"
                           f"{' Its last output: ' + stderr.strip() if stderr.strip() else ''}")


def _quote(failure: dict) -> str:
    return f"\n{_quote_lines(failure['traceback'])}" if failure.get("traceback") else ""


def _quote_lines(text: str) -> str:
    return "\n".join(text.rstrip().splitlines()[-TRACEBACK_LINES:])


def _read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}


def _read_line_with_timeout(process: subprocess.Popen, timeout: float) -> bytes:
    line: list[bytes] = []
    reader = threading.Thread(target=lambda: line.append(process.stdout.readline()), daemon=True)
    reader.start()
    reader.join(timeout)
    return line[0] if line else b""


def _drain(stream) -> None:
    for line in stream:
        log.warning("UDF sandbox: %s", line.decode(errors="replace").rstrip())


_client: ForkServerClient | None = None
_client_pid: int | None = None
_client_lock = threading.Lock()


def fork_server(spool_mb: int = 2048) -> ForkServerClient:
    """This process's fork server, started (or restarted after it died) on first use."""
    global _client, _client_pid
    with _client_lock:
        if _client is None or _client_pid != os.getpid() or not _client.alive():
            if _client is not None and _client_pid == os.getpid():
                _client.close()
            try:
                _client, _client_pid = ForkServerClient(spool_mb), os.getpid()
            except (SandboxUnavailable, OSError) as exc:
                log.error("UDF sandbox unavailable: %s", exc)
                raise errors.UdfFailed(f"UDFs cannot run on this server at the moment: {exc}") from exc
        return _client


def run_udf_chunk(code: str, context: object, cube, limits: UdfLimits, session: str | None = None):
    return fork_server(limits.spool_mb).run(code, context, cube, limits, session)[0]


def run_udf_vector(code: str, context: object, cube, geometries: dict, limits: UdfLimits):
    """A vector cube's values and geometries through the UDF: (result cube, returned geometries or None)."""
    return fork_server(limits.spool_mb).run(code, context, cube, limits, None, geometries)
