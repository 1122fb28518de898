"""One UDF process of the sandbox: forked by the fork server (worker.py) for one session (the chunks of
one run_udf node of one request: one user, one code), limited, unprivileged, and reused for that
session's next chunks.

Reuse is for speed, not convenience: a fresh process pays again for every page the UDF allocates (about
30 ms for an NDVI-sized chunk), a process that ran a chunk before does not. It never serves another
session (another request or user), and ends after its first failed chunk, after MAX_CHUNKS chunks or
when the fork server retires it.

The process reads one request per line on its request pipe ({"dir": the chunk's directory in /spool}),
runs the user's code with ``openeo.udf.run_code.run_udf_code`` on ``input.*`` (chunk_codec.py, never
pickles), writes ``output.*`` and answers one line on its answer pipe. A failing chunk writes
``error.json`` (the UDF's traceback) and the process exits: its exit status says what happened.
Standard library, numpy and the openeo package only: it runs inside the jail.
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import traceback

if __package__:
    from backend.processing.udf.chunk_codec import decode_chunk, decode_geometries, encode_chunk, encode_geometries
    from backend.processing.udf.jail import PR_SET_NO_NEW_PRIVS, libc
else:  # the fork server runs as a script: its sibling modules
    from chunk_codec import decode_chunk, decode_geometries, encode_chunk, encode_geometries
    from jail import PR_SET_NO_NEW_PRIVS, libc

MAX_PROCESSES = 32  # per session (its own uid): a fork bomb stops here
MAX_OPEN_FILES = 256
MAX_CHUNKS = 64  # then a fresh process: what a UDF leaks stays bounded
EXIT_EXCEPTION, EXIT_SETUP, EXIT_MEMORY = 1, 2, 3


def limit_and_drop(uid: int, memory: int, cpu_backstop: float) -> None:
    """Limits for the process's whole life, then the session's uid and no way back to privileges.
    CPU seconds per chunk are enforced by the fork server; RLIMIT_CPU is only the backstop of a whole
    process life (and of every process a UDF forks)."""
    with open("/proc/self/statm") as file:  # the runtime's own mappings are not the UDF's allowance
        mapped = int(file.read().split()[0]) * resource.getpagesize()
    resource.setrlimit(resource.RLIMIT_AS, (mapped + memory, mapped + memory))
    seconds = max(1, int(cpu_backstop))
    resource.setrlimit(resource.RLIMIT_CPU, (seconds, seconds + 1))
    resource.setrlimit(resource.RLIMIT_NPROC, (MAX_PROCESSES, MAX_PROCESSES))
    resource.setrlimit(resource.RLIMIT_FSIZE, (memory, memory))
    resource.setrlimit(resource.RLIMIT_NOFILE, (MAX_OPEN_FILES, MAX_OPEN_FILES))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    os.setgroups([])
    os.setresgid(uid, uid, uid)
    os.setresuid(uid, uid, uid)
    libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0)


def serve(requests_fd: int, answers_fd: int) -> int:
    """The session's chunks, one after the other, until the request pipe closes or a chunk fails."""
    requests = os.fdopen(requests_fd, "rb", buffering=0)
    for _ in range(MAX_CHUNKS):
        line = requests.readline()
        if not line:
            return 0
        workdir = os.path.join("/spool", os.path.basename(json.loads(line)["dir"]))
        _redirect_output(workdir)
        os.environ.update(HOME=workdir, TMPDIR=workdir)
        os.chdir(workdir)
        status = run_chunk(workdir)
        os.chdir("/")
        if status != 0:
            return status
        os.write(answers_fd, b"done\n")
    return 0


def _redirect_output(workdir: str) -> None:
    """The chunk's print output and warnings go to files in its own directory."""
    import sys

    sys.stdout.flush()
    sys.stderr.flush()
    for fd, name in ((1, "stdout.txt"), (2, "stderr.txt")):
        opened = os.open(os.path.join(workdir, name), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        os.dup2(opened, fd)
        os.close(opened)


def run_chunk(workdir: str) -> int:
    """The user's code on input.*: writes output.* (0) or error.json (EXIT_EXCEPTION, EXIT_MEMORY)."""
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
        vector = _input_geometries(workdir)
        data = UdfData(datacube_list=[XarrayDataCube(cube)], user_context=request.get("context") or {},
                       feature_collection_list=[vector[1]] if vector else None)
        result = run_code.run_udf_code(code, data)
        cubes = result.get_datacube_list() or []
        if len(cubes) != 1:
            raise ValueError(f"the UDF must return one data cube, it returned {len(cubes)}")
        encode_chunk(cubes[0].get_array(), workdir, "output")
        if vector:
            _output_geometries(workdir, vector, result.get_feature_collection_list() or [])
        return 0
    except MemoryError as exc:
        write_error(workdir, "memory", udf_traceback(exc))
        return EXIT_MEMORY
    except BaseException as exc:  # noqa: BLE001 - everything the user's code raises is reported
        write_error(workdir, "exception", udf_traceback(exc))
        return EXIT_EXCEPTION


def _input_geometries(workdir: str):
    """A vector cube's geometries, if the chunk is one: (their dimension, a FeatureCollection of a
    GeoDataFrame indexed like the cube's labels on that dimension)."""
    path = os.path.join(workdir, "input-geometries.json")
    if not os.path.exists(path):
        return None
    import geopandas as gpd
    from openeo.udf import FeatureCollection

    with open(path) as file:
        document = json.load(file)
    frame = gpd.GeoDataFrame(document.get("properties") or {}, geometry=decode_geometries(document),
                             crs=document["crs"])
    return document["dim"], FeatureCollection(id="geometries", data=frame)


def _output_geometries(workdir: str, vector, collections) -> None:
    """The geometries apply_vectorcube returned (an apply_datacube UDF leaves the input's in place)."""
    dim, given = vector
    if len(collections) != 1 or collections[0] is given:
        return
    frame = collections[0].data
    crs = frame.crs.to_wkt() if frame.crs is not None else None
    properties = {name: frame[name].to_numpy() for name in frame.columns if name != frame.geometry.name}
    with open(os.path.join(workdir, "output-geometries.json"), "w") as file:
        json.dump(encode_geometries(dim, list(frame.geometry), crs, properties), file)


def _module(compiled) -> dict:
    from openeo.udf import run_code

    namespace = run_code._build_default_execution_context()
    exec(compiled, namespace)
    return namespace


def udf_traceback(exc: BaseException) -> str:
    """The traceback from the UDF's first frame on (the runner's frames say nothing to the user)."""
    frames = traceback.extract_tb(exc.__traceback__)
    first = next((i for i, frame in enumerate(frames) if frame.filename == "<udf>"), 0)
    lines = ["Traceback (most recent call last):\n", *traceback.format_list(frames[first:])]
    lines += traceback.format_exception_only(type(exc), exc)
    return "".join(lines)


def write_error(workdir: str, kind: str, text: str) -> None:
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
