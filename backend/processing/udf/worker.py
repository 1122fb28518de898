"""The sandboxed side of Python UDFs: a fork server that runs each chunk in a fresh, limited process.

Started by sandbox.py as (a server process imports this module only for ``MINIMAL_ENV``)

    unshare --net --mount --pid --ipc --uts --fork --kill-child python -I worker.py BASE UID_BASE SPOOL_MB

so it lives in its own network namespace (no interface but a downed loopback: no network), mount
namespace, PID namespace (it is PID 1: when it ends, every process left in the namespace is killed),
IPC and UTS namespaces.
It then builds a root of its own (jail.py: a tmpfs holding read-only binds of the Python installation and
/usr, a few device nodes and a tmpfs of SPOOL_MB MiB at /spool, which the server reaches through
/proc/<pid>/root), chroots into it, imports numpy, xarray and
openeo once (about a second: the reason for a fork server) and answers requests on stdin, one JSON line
each: {"id", "dir", "memory", "cpu", "timeout"}. For each it forks a child that:

* starts a session, points stdin/stdout/stderr at /dev/null and files in its directory,
* takes the uid ``UID_BASE + its pid`` (unique among running chunks of this server) and drops every
  privilege, after limits on address space, CPU seconds, processes, file size and open files,
* runs the user's code with ``openeo.udf.run_code.run_udf_code`` on the chunk in /spool/<dir>
  (``input.npy`` + ``input.json``: chunk_codec.py, never pickles) and writes ``output.*`` or
  ``error.json`` (the UDF's traceback).

The server answers one JSON line per finished chunk: {"id", "exit", "timed_out", "cpu"}.
A chunk over its wall-clock timeout is killed with every process of its uid (fork bombs included).
"""

from __future__ import annotations

import json
import os
import resource
import select
import shutil
import signal
import sys
import time
import traceback

import numpy as np

if __package__:  # imported from the package (sandbox.py reads MINIMAL_ENV)
    from backend.processing.udf.chunk_codec import decode_chunk, encode_chunk
    from backend.processing.udf.jail import PR_SET_NO_NEW_PRIVS, enter_jail, libc
else:  # run as a script (python -I worker.py): its sibling modules, never an installed copy
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from chunk_codec import decode_chunk, encode_chunk
    from jail import PR_SET_NO_NEW_PRIVS, enter_jail, libc

MINIMAL_ENV = {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8", "OPENBLAS_NUM_THREADS": "1",
               "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "PYTHONDONTWRITEBYTECODE": "1"}
MAX_PROCESSES = 32  # per chunk (its own uid): a fork bomb stops here
MAX_OPEN_FILES = 256


# --- one chunk (in the forked child) ----------------------------------------------------------------

def _limit_and_drop(uid: int, memory: int, cpu: float, workdir: str) -> None:
    os.chown(workdir, uid, uid)
    os.chmod(workdir, 0o700)
    with open("/proc/self/statm") as file:  # the runtime's own mappings are not the UDF's allowance
        mapped = int(file.read().split()[0]) * resource.getpagesize()
    resource.setrlimit(resource.RLIMIT_AS, (mapped + memory, mapped + memory))
    seconds = max(1, int(cpu))
    resource.setrlimit(resource.RLIMIT_CPU, (seconds, seconds + 1))
    resource.setrlimit(resource.RLIMIT_NPROC, (MAX_PROCESSES, MAX_PROCESSES))
    resource.setrlimit(resource.RLIMIT_FSIZE, (memory, memory))
    resource.setrlimit(resource.RLIMIT_NOFILE, (MAX_OPEN_FILES, MAX_OPEN_FILES))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    os.setgroups([])
    os.setresgid(uid, uid, uid)
    os.setresuid(uid, uid, uid)
    libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0)


def _udf_traceback(exc: BaseException) -> str:
    """The traceback from the UDF's first frame on (the runner's frames say nothing to the user)."""
    frames = traceback.extract_tb(exc.__traceback__)
    first = next((i for i, frame in enumerate(frames) if frame.filename == "<udf>"), 0)
    lines = ["Traceback (most recent call last):\n", *traceback.format_list(frames[first:])]
    lines += traceback.format_exception_only(type(exc), exc)
    return "".join(lines)


def run_chunk(workdir: str) -> None:
    """Runs in the child, already limited: the user's code on input.*, writes output.* or error.json."""
    import linecache

    from openeo.udf import UdfData, XarrayDataCube
    from openeo.udf import run_code

    with open(os.path.join(workdir, "request.json")) as file:
        request = json.load(file)
    code = request["code"]
    linecache.cache["<udf>"] = (len(code), None, code.splitlines(True), "<udf>")
    try:
        compiled = compile(code, "<udf>", "exec", dont_inherit=True)  # not our __future__ flags
        run_code.load_module_from_string = lambda _code: _module(compiled)  # our filename in tracebacks
        cube = decode_chunk(workdir, "input")
        data = UdfData(datacube_list=[XarrayDataCube(cube)], user_context=request.get("context") or {})
        result = run_code.run_udf_code(code, data)
        cubes = result.get_datacube_list() or []
        if len(cubes) != 1:
            raise ValueError(f"the UDF must return one data cube, it returned {len(cubes)}")
        encode_chunk(cubes[0].get_array(), workdir, "output")
    except MemoryError as exc:
        _write_error(workdir, "memory", _udf_traceback(exc))
        os._exit(3)
    except BaseException as exc:  # noqa: BLE001 - everything the user's code raises is reported
        _write_error(workdir, "exception", _udf_traceback(exc))
        os._exit(1)


def _module(compiled) -> dict:
    from openeo.udf import run_code

    namespace = run_code._build_default_execution_context()
    exec(compiled, namespace)
    return namespace


def _write_error(workdir: str, kind: str, text: str) -> None:
    for attempt in range(2):
        try:
            with open(os.path.join(workdir, "error.json"), "w") as file:
                json.dump({"kind": kind, "traceback": text}, file)
            return
        except OSError:  # e.g. the UDF filled the spool: the failed chunk's files go, then its error fits
            if attempt == 0:
                for name in os.listdir(workdir):
                    path = os.path.join(workdir, name)
                    shutil.rmtree(path, ignore_errors=True) if os.path.isdir(path) else os.remove(path)


def _child(request: dict, uid: int) -> None:
    workdir = os.path.join("/spool", os.path.basename(request["dir"]))
    os.setsid()
    for fd, name, mode in ((0, "/dev/null", os.O_RDONLY), (1, f"{workdir}/stdout.txt", os.O_WRONLY | os.O_CREAT),
                           (2, f"{workdir}/stderr.txt", os.O_WRONLY | os.O_CREAT)):
        opened = os.open(name, mode, 0o600)
        os.dup2(opened, fd)
        os.close(opened)
    os.closerange(3, 1024)
    for path in ("stdout.txt", "stderr.txt"):
        os.chown(os.path.join(workdir, path), uid, uid)
    os.environ.update(HOME=workdir, TMPDIR=workdir)
    _limit_and_drop(uid, int(request["memory"]), float(request["cpu"]), workdir)
    os.chdir(workdir)
    run_chunk(workdir)
    sys.stdout.flush()
    os._exit(0)


# --- the fork server --------------------------------------------------------------------------------

class ForkServer:
    def __init__(self, uid_base: int):
        self.uid_base = uid_base
        self.running: dict[int, dict] = {}  # pid → {id, uid, deadline, timed_out}
        self.exited: dict[int, tuple] = {}  # pid → (wait status, rusage) of ended chunks not yet answered
        self.wake_read, wake_write = os.pipe()
        os.set_blocking(wake_write, False)
        signal.set_wakeup_fd(wake_write)
        signal.signal(signal.SIGCHLD, lambda *_: None)

    def serve(self) -> None:
        buffer = b""
        while True:
            deadlines = [entry["deadline"] for entry in self.running.values() if not entry["timed_out"]]
            wait = max(0.0, min(deadlines) - time.monotonic()) if deadlines else None
            wait = 0.0 if self.exited else wait
            ready, _, _ = select.select([0, self.wake_read], [], [], wait)
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
            self.reap()
            self.expire()

    def start(self, request: dict) -> None:
        pid = os.fork()
        if pid == 0:
            try:
                signal.set_wakeup_fd(-1)
                signal.signal(signal.SIGCHLD, signal.SIG_DFL)
                _child(request, self.uid_base + os.getpid())
            except BaseException:  # noqa: BLE001 - setting the child up failed: say so, never return
                _write_error(os.path.join("/spool", os.path.basename(request["dir"])), "setup",
                             traceback.format_exc())
            os._exit(2)
        self.running[pid] = {"id": request["id"], "uid": self.uid_base + pid, "timed_out": False,
                             "deadline": time.monotonic() + float(request["timeout"])}

    def collect(self) -> None:
        """Wait for every ended child: our chunks' statuses are kept, orphans (reparented to us) dropped."""
        while True:
            try:
                pid, status, usage = os.wait4(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            if pid in self.running:
                self.exited[pid] = (status, usage)

    def reap(self) -> None:
        self.collect()
        while self.exited:
            pid, (status, usage) = self.exited.popitem()
            entry = self.running.pop(pid)
            self.kill_uid(entry["uid"])  # whatever the chunk left behind
            reply = {"id": entry["id"], "exit": os.waitstatus_to_exitcode(status), "timed_out": entry["timed_out"],
                     "cpu": usage.ru_utime + usage.ru_stime}
            os.write(1, (json.dumps(reply) + "\n").encode())

    def expire(self) -> None:
        now = time.monotonic()
        for pid, entry in list(self.running.items()):
            if not entry["timed_out"] and entry["deadline"] <= now:
                entry["timed_out"] = True
                os.kill(pid, signal.SIGKILL)
                self.kill_uid(entry["uid"])

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
    os.write(1, (json.dumps({"ready": True}) + "\n").encode())
    ForkServer(uid_base).serve()


if __name__ == "__main__":
    main()
