"""The sandboxed side of Python UDFs: a fork server that runs chunks in limited processes, one per session.

Started by sandbox.py as (a server process imports this module only for ``MINIMAL_ENV``)

    unshare --net --mount --pid --ipc --uts --fork --kill-child python -I worker.py BASE UID_BASE SPOOL_MB

so it lives in its own network namespace (no interface but a downed loopback: no network), mount
namespace, PID namespace (it is PID 1: when it ends, every process left in the namespace is killed),
IPC and UTS namespaces.
It then builds a root of its own (jail.py: a tmpfs holding read-only binds of the Python installation and
/usr, a few device nodes and a tmpfs of SPOOL_MB MiB at /spool, which the server reaches through
/proc/<pid>/root), chroots into it, imports numpy, xarray and
openeo once (about a second: the reason for a fork server) and answers requests on stdin, one JSON line
each: {"id", "dir", "session", "memory", "cpu", "timeout"}. A chunk goes to an idle process of its
session, or to a new one (chunk_process.py) that starts a session of its own, takes the uid
``UID_BASE + its pid`` (unique among this server's processes), drops every privilege after limits on
address space, processes, file size and open files, and runs the session's chunks one after the other.

The server answers one JSON line per finished chunk: {"id", "exit", "timed_out", "cpu"}. A chunk over
its wall-clock timeout or its CPU seconds is killed with every process of its uid (fork bombs
included); so is a process idle for IDLE_SECONDS (its request has ended).
"""

from __future__ import annotations

import gc
import json
import os
import select
import signal
import sys
import time
import traceback

import numpy as np

if __package__:  # imported from the package (sandbox.py reads MINIMAL_ENV)
    from backend.processing.udf import chunk_process
    from backend.processing.udf.chunk_codec import decode_chunk, encode_chunk
    from backend.processing.udf.jail import enter_jail
else:  # run as a script (python -I worker.py): its sibling modules, never an installed copy
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import chunk_process
    from chunk_codec import decode_chunk, encode_chunk
    from jail import enter_jail

MINIMAL_ENV = {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8", "OPENBLAS_NUM_THREADS": "1",
               "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "PYTHONDONTWRITEBYTECODE": "1"}
IDLE_SECONDS = 2.0  # a session's process waits this long for its next chunk
CPU_POLL_SECONDS = 0.1  # how often a running chunk's CPU seconds are read
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
SIGXCPU = 24


# --- the fork server --------------------------------------------------------------------------------

class Process:
    """A session's process as the fork server sees it."""

    def __init__(self, pid: int, session: str, memory: int, uid: int, requests_fd: int, answers_fd: int):
        self.pid, self.session, self.memory, self.uid = pid, session, memory, uid
        self.requests_fd, self.answers_fd = requests_fd, answers_fd
        self.chunk: dict | None = None  # the running chunk: {id, deadline, cpu_limit, cpu_start, timed_out, ...}
        self.idle_since = time.monotonic()

    def cpu_seconds(self) -> float:
        try:
            with open(f"/proc/{self.pid}/stat") as file:
                fields = file.read().rsplit(")", 1)[1].split()
            return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS  # utime + stime
        except (OSError, IndexError, ValueError):
            return 0.0


class ForkServer:
    def __init__(self, uid_base: int):
        self.uid_base = uid_base
        self.processes: dict[int, Process] = {}  # pid → process
        self.exited: dict[int, int] = {}  # pid → wait status of ended processes not yet handled
        self.wake_read, wake_write = os.pipe()
        os.set_blocking(wake_write, False)
        signal.set_wakeup_fd(wake_write)
        signal.signal(signal.SIGCHLD, lambda *_: None)

    def serve(self) -> None:
        buffer = b""
        while True:
            ready, _, _ = select.select([0, self.wake_read, *self._answer_fds()], [], [], self._wait())
            if self.wake_read in ready:
                os.read(self.wake_read, 4096)
            if 0 in ready:
                data = os.read(0, 65536)
                if not data:  # our parent is gone: end (PID 1 leaving kills the namespace)
                    return
                buffer += data
                while b"\n" in buffer:
                    line, buffer = buffer.split(b"\n", 1)
                    if line.strip():
                        self.start(json.loads(line))
            for process in list(self.processes.values()):
                if process.answers_fd in ready and process.chunk is not None:
                    self.answered(process)
            self.reap()
            self.police()

    def _answer_fds(self) -> list[int]:
        return [process.answers_fd for process in self.processes.values()]

    def _wait(self) -> float | None:
        if self.exited:
            return 0.0
        busy = [p.chunk["deadline"] for p in self.processes.values() if p.chunk and not p.chunk["killed"]]
        idle = [p.idle_since + IDLE_SECONDS for p in self.processes.values() if p.chunk is None]
        if busy:
            return max(0.0, min(min(busy) - time.monotonic(), CPU_POLL_SECONDS))
        return max(0.0, min(idle) - time.monotonic()) if idle else None

    def start(self, request: dict) -> None:
        session, memory = request.get("session") or request["id"], int(request["memory"])
        self.collect()  # a process that ended meanwhile is not chosen
        process = next((p for p in self.processes.values() if p.chunk is None and p.session == session
                        and p.memory == memory and p.pid not in self.exited), None)
        if process is None:
            process = self.fork(session, memory, float(request["cpu"]))
        workdir = os.path.join("/spool", os.path.basename(request["dir"]))
        os.chown(workdir, process.uid, process.uid)
        os.chmod(workdir, 0o700)
        process.chunk = {"id": request["id"], "deadline": time.monotonic() + float(request["timeout"]),
                         "cpu_limit": float(request["cpu"]), "cpu_start": process.cpu_seconds(),
                         "timed_out": False, "over_cpu": False, "killed": False}
        try:
            os.write(process.requests_fd, (json.dumps({"dir": workdir}) + "\n").encode())
        except OSError:  # it ended meanwhile: reap() answers for the chunk
            pass

    def fork(self, session: str, memory: int, cpu: float) -> Process:
        requests_read, requests_write = os.pipe()
        answers_read, answers_write = os.pipe()
        pid = os.fork()
        if pid == 0:
            status = chunk_process.EXIT_SETUP
            try:
                signal.set_wakeup_fd(-1)
                signal.signal(signal.SIGCHLD, signal.SIG_DFL)
                os.setsid()
                null = os.open("/dev/null", os.O_RDWR)
                for fd in (0, 1):  # 2 stays the fork server's (logged by the server) until the first chunk
                    os.dup2(null, fd)
                os.closerange(3, requests_read)
                os.closerange(requests_read + 1, answers_write)
                os.closerange(answers_write + 1, 1024)
                chunk_process.limit_and_drop(self.uid_base + os.getpid(), memory,
                                             cpu * (chunk_process.MAX_CHUNKS + 1))
                status = chunk_process.serve(requests_read, answers_write)
            except BaseException:  # noqa: BLE001 - setting up failed: logged by the server, the chunk fails
                traceback.print_exc()
                status = chunk_process.EXIT_SETUP
            os._exit(status)
        os.close(requests_read)
        os.close(answers_write)
        process = Process(pid, session, memory, self.uid_base + pid, requests_write, answers_read)
        self.processes[pid] = process
        return process

    def answered(self, process: Process) -> None:
        if not os.read(process.answers_fd, 64):  # ended: reap() answers
            return
        chunk, process.chunk, process.idle_since = process.chunk, None, time.monotonic()
        self.reply(chunk, 0, process.cpu_seconds() - chunk["cpu_start"])

    def reply(self, chunk: dict, exit_code: int, cpu: float) -> None:
        if chunk["over_cpu"]:
            exit_code = -SIGXCPU
        answer = {"id": chunk["id"], "exit": exit_code, "timed_out": chunk["timed_out"], "cpu": cpu}
        os.write(1, (json.dumps(answer) + "\n").encode())

    def collect(self) -> None:
        """Wait for every ended child: our processes' statuses are kept, orphans (reparented to us) dropped."""
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            if pid in self.processes:
                self.exited[pid] = status

    def reap(self) -> None:
        self.collect()
        while self.exited:
            pid, status = self.exited.popitem()
            process = self.processes.pop(pid)
            if process.chunk is not None and not process.chunk["killed"]:
                self._drain_answer(process)  # its last chunk may have finished just before it ended
            self.kill_uid(process.uid)  # whatever the process left behind
            os.close(process.requests_fd)
            os.close(process.answers_fd)
            if process.chunk is not None:
                self.reply(process.chunk, os.waitstatus_to_exitcode(status), 0.0)

    def _drain_answer(self, process: Process) -> None:
        os.set_blocking(process.answers_fd, False)
        try:
            if os.read(process.answers_fd, 64):
                self.reply(process.chunk, 0, 0.0)
                process.chunk = None
        except BlockingIOError:
            pass

    def police(self) -> None:
        """Chunks over their wall-clock time or CPU seconds, and processes idle too long, are killed."""
        now = time.monotonic()
        for process in list(self.processes.values()):
            chunk = process.chunk
            if chunk is None:
                if now - process.idle_since >= IDLE_SECONDS:
                    self.kill(process)
                continue
            if chunk["killed"]:
                continue
            if chunk["deadline"] <= now:
                chunk["timed_out"] = True
            elif process.cpu_seconds() - chunk["cpu_start"] > chunk["cpu_limit"]:
                chunk["over_cpu"] = True
            else:
                continue
            chunk["killed"] = True
            self.kill(process)

    def kill(self, process: Process) -> None:
        try:
            os.kill(process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.kill_uid(process.uid)

    def kill_uid(self, uid: int) -> None:
        """Every process of this uid in our namespace, a fork bomb's too: a child that takes the uid and
        signals all it may signal, again until none is left (processes forked meanwhile included)."""
        for _ in range(100):
            if not _has_processes(uid):
                return
            pid = os.fork()
            if pid == 0:
                try:
                    os.setresuid(uid, uid, uid)
                    for _ in range(20):
                        os.kill(-1, signal.SIGKILL)
                except BaseException:  # noqa: BLE001 - ProcessLookupError: none left to signal
                    pass
                os._exit(0)
            os.waitpid(pid, 0)
            self.collect()  # the killed are zombies until we wait for them
            time.sleep(0.001)
        print(f"processes of uid {uid} survived 100 rounds of SIGKILL", file=sys.stderr, flush=True)


WARM_UP_UDF = """
def apply_datacube(cube: XarrayDataCube, context: dict) -> XarrayDataCube:
    return XarrayDataCube(cube.get_array() + 1)
"""


def warm_up() -> None:
    """One chunk through the whole path here, once: what numpy, xarray, pandas and openeo import lazily
    is then imported in every forked chunk already (about 0.5 s a chunk otherwise)."""
    import tempfile

    import geopandas  # noqa: F401  (vector cubes' UDFs get GeoDataFrames)
    import xarray as xr
    from openeo.udf import UdfData, XarrayDataCube, run_code

    workdir = tempfile.mkdtemp(dir="/spool")
    cube = xr.DataArray(np.zeros((2, 1, 2, 2), dtype="float32"), dims=("t", "bands", "y", "x"),
                        coords={"t": np.array(["2020-01-01", "2020-01-02"], dtype="datetime64[ns]"),
                                "bands": ["B1"], "y": [1.0, 0.0], "x": [0.0, 1.0]})
    encode_chunk(cube, workdir, "input")
    data = UdfData(datacube_list=[XarrayDataCube(decode_chunk(workdir, "input"))], user_context={})
    result = run_code.run_udf_code(WARM_UP_UDF, data)
    encode_chunk(result.get_datacube_list()[0].get_array(), workdir, "output")
    decode_chunk(workdir, "output")
    traceback.format_exception(ValueError("warm-up"))
    chunk_process.udf_traceback(ValueError("warm-up"))
    for name in os.listdir(workdir):
        os.remove(os.path.join(workdir, name))
    os.rmdir(workdir)


def _has_processes(uid: int) -> bool:
    """Whether a process of ``uid`` is left in our PID namespace (its /proc lists only ours: a few)."""
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                if os.stat(f"/proc/{name}").st_uid == uid:
                    return True
            except OSError:
                continue
    return False


def main() -> None:
    base, uid_base, spool_mb = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    if uid_base <= 0:
        sys.exit("worker.py: UID_BASE must be > 0 (chunks never run as root)")
    enter_jail(os.path.join(base, "root"), spool_mb)
    warm_up()
    # What the libraries allocated so far lives on in every chunk: frozen, no collection in a chunk walks
    # (and so copies, page by page) the server's heap. A few milliseconds per chunk.
    gc.collect()
    gc.freeze()
    os.write(1, (json.dumps({"ready": True}) + "\n").encode())
    ForkServer(uid_base).serve()


if __name__ == "__main__":
    main()
