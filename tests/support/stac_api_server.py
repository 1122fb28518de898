"""A real STAC API server process, serving a static STAC catalog, for tests.

    from tests.support.stac_api_server import serve_stac_api

    with serve_stac_api(Path("demo/catalog.json")) as url:     # "http://127.0.0.1:PORT"
        client = pystac_client.Client.open(url)

The server is ``rustac serve`` (the ``rustac`` package from PyPI, already a test
dependency) with its in-process memory backend: no database, starts in well under a
second. ``rustac`` cannot serve a static catalog as it is on disk, so the catalog is
first *exported* into a temporary directory (see :func:`export_catalog`):

* one ``NNN-collection.json`` per collection and one ``NNN-items.json``
  (a GeoJSON FeatureCollection) with all the items below that collection, passed to
  ``rustac serve`` as ``collection, items, collection, items, ...``. (rustac's own
  ``--load-collection-items`` resolves relative item links against the *working
  directory* instead of the collection file, and it rejects a plain ``Catalog`` as
  input, so it is not used.)
* asset hrefs are made absolute, because the server copies them verbatim and clients
  resolve a relative href against the item's API URL. Local files become ``file://``
  URIs (default): a plain absolute *path* is no good either, since pystac's
  ``Asset.get_absolute_href()`` (and so odc-stac) joins it with the item's http self
  link (``/tmp/a.tif`` -> ``http://127.0.0.1:PORT/tmp/a.tif``). rasterio (and so
  odc-stac) opens ``file://`` URIs; code that hands an href to GDAL itself must strip
  the scheme. ``asset_hrefs="path"`` serves plain paths instead, for code that reads
  ``asset.href`` without resolving it. Remote hrefs (http, s3, ...) are kept.
* the static structural links (root/parent/child/item/self/collection) are dropped:
  the server adds its own http links, and the relative static ones would be resolved
  against the API URL and point nowhere.
* the JSON is otherwise copied verbatim (no pystac round trip, which would migrate
  e.g. ``proj:epsg`` to ``proj:code``).

What the rustac 0.9.x memory backend supports (measured, see
tests/integration/test_stac_api_fixture.py): landing page, /conformance, /collections,
/collections/{id}, /collections/{id}/items[/{item}], /search GET+POST with
``collections``, ``ids``, ``bbox``, ``intersects``, ``datetime`` (RFC 3339 instants or
intervals, open ends ``..``) and ``limit`` with ``next`` links (``skip`` paging; POST
next links carry a body). NOT supported: ``filter``/CQL2 and ``query`` (no conformance
class; a filter *with* ``filter-lang`` silently matches nothing, one without it is
ignored), ``sortby`` and ``fields`` (ignored), per-collection queryables (404; the root
/queryables is a fixed stub with no properties). Bug: GET /search with both
``collections`` and ``limit`` answers 500 "unsupported value" -- use POST (pystac-client's
default when the landing page offers POST, as rustac's does).

On exit the process is terminated (SIGTERM, then SIGKILL). On Linux the child also gets
SIGTERM if the process that started it dies without cleaning up (PR_SET_PDEATHSIG; it
fires when the *thread* that started the server ends, so start it from the main thread,
as pytest fixtures are).

By hand:
    python -m tests.support.stac_api_server path/to/catalog.json [--port 7822]
prints the URL (stdout, one line) and serves until Ctrl-C / SIGTERM.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Literal
from urllib.parse import unquote, urlparse

import requests

if not __package__:  # run or loaded by file path: `tests` must be this checkout's, not Canaille's
    _HERE = Path(__file__).resolve().parent
    sys.path[:] = [str(_HERE.parents[1]), *(p for p in sys.path if Path(p).resolve() != _HERE)]

from tests.support.processes import free_port, http_ok, stop_process, wait_until_ready  # noqa: E402

__all__ = ["serve_stac_api", "export_catalog", "rustac_command", "StacApiServerError"]

#: links of the static catalog that describe its file layout; the API adds its own
STRUCTURAL_RELS = frozenset({"root", "parent", "child", "item", "items", "self", "collection"})

#: URL schemes that are kept as they are in asset hrefs (anything with a scheme but file)
_LOCAL_SCHEMES = {"", "file"}

AssetHrefStyle = Literal["path", "uri"]


class StacApiServerError(RuntimeError):
    """The server could not be started (the message includes its output)."""


# --------------------------------------------------------------------------- export


def _local_path(href: str, base_file: Path) -> Path | None:
    """``href`` (relative to ``base_file``) as an absolute local path, or None if remote."""
    parsed = urlparse(href)
    # "C:\\x" on Windows parses with scheme "c"; a one-letter scheme is a drive letter
    if parsed.scheme not in _LOCAL_SCHEMES and len(parsed.scheme) > 1:
        return None
    if parsed.scheme == "file":
        href = unquote(parsed.path)
    path = Path(href)
    if not path.is_absolute():
        path = base_file.parent / path
    # normpath, not resolve(): keep symlinks as the catalog author laid them out
    return Path(os.path.normpath(path))


def _absolute_asset_href(href: str, base_file: Path, style: AssetHrefStyle) -> str:
    path = _local_path(href, base_file)
    if path is None:
        return href  # http(s)://, s3://, ... : already absolute
    return path.as_uri() if style == "uri" else str(path)


def _read_json(path: Path) -> dict:
    with path.open(encoding="utf-8") as f:
        return json.load(f)


def _link_targets(obj: dict, base_file: Path, rels: set[str]) -> Iterator[Path]:
    for link in obj.get("links", []):
        if link.get("rel") in rels:
            target = _local_path(link["href"], base_file)
            if target is None:
                raise ValueError(
                    f"{base_file}: link {link['href']!r} is not a local file; "
                    "only local static catalogs can be exported"
                )
            yield target


def _for_api(obj: dict, base_file: Path, style: AssetHrefStyle) -> dict:
    out = dict(obj)
    out["links"] = [link for link in obj.get("links", []) if link.get("rel") not in STRUCTURAL_RELS]
    if "assets" in obj:
        out["assets"] = {
            key: {**asset, "href": _absolute_asset_href(asset["href"], base_file, style)}
            for key, asset in obj["assets"].items()
        }
    return out


def export_catalog(
    catalog_json: Path,
    out_dir: Path,
    *,
    asset_hrefs: AssetHrefStyle = "uri",
) -> list[Path]:
    """Write the collections and items of a static catalog as files ``rustac serve`` loads.

    Follows ``child`` and ``item`` links from ``catalog_json`` (a Catalog or a
    Collection). Every Collection found becomes an API collection (nested collections are
    flattened, as STAC APIs are); items belong to their nearest enclosing collection (their
    ``collection`` field is set to its id). Returns the files in the order to pass them:
    ``[collection_0, items_0, collection_1, items_1, ...]`` (an items file only when the
    collection has items).

    Raises ValueError for an item that is in no collection (a STAC API cannot serve it)
    and for two collections with the same id.
    """
    catalog_json = Path(os.path.abspath(catalog_json))
    out_dir.mkdir(parents=True, exist_ok=True)
    collections: dict[str, tuple[dict, list[dict]]] = {}
    seen: set[Path] = set()

    def walk(path: Path, collection_id: str | None) -> None:
        if path in seen:
            return
        seen.add(path)
        obj = _read_json(path)
        kind = obj.get("type")
        if kind == "Feature":
            if collection_id is None:
                raise ValueError(f"item {path} is not below any collection; a STAC API cannot serve it")
            item = _for_api(obj, path, asset_hrefs)
            item["collection"] = collection_id
            collections[collection_id][1].append(item)
            return
        if kind == "Collection":
            collection_id = obj["id"]
            if collection_id in collections:
                raise ValueError(f"two collections with id {collection_id!r} (second: {path})")
            collections[collection_id] = (_for_api(obj, path, asset_hrefs), [])
        elif kind != "Catalog":
            raise ValueError(f"{path}: not a STAC Catalog, Collection or Item (type={kind!r})")
        for target in _link_targets(obj, path, {"child", "item"}):
            walk(target, collection_id)

    walk(catalog_json, None)

    files: list[Path] = []
    for n, (collection, items) in enumerate(collections.values()):
        collection_file = out_dir / f"{n:03d}-collection.json"
        collection_file.write_text(json.dumps(collection), encoding="utf-8")
        files.append(collection_file)
        if items:
            items_file = out_dir / f"{n:03d}-items.json"
            items_file.write_text(
                json.dumps({"type": "FeatureCollection", "features": items}), encoding="utf-8"
            )
            files.append(items_file)
    return files


# --------------------------------------------------------------------------- server


# The rustac CLI is the console script `rustac` (`from rustac import main; main()`); main()
# parses the *process* argv minus its first entry (the interpreter), so it must run as
# `python /path/to/rustac ARGS` -- `python -c` does not work. The server is started
# through a small launcher that, on Linux, first asks the kernel to SIGTERM it when the
# test process dies without cleaning up (SIGKILL, os._exit of pytest-timeout's thread
# method, ...): PR_SET_PDEATHSIG, which survives the exec; the parent pid is checked for
# the race of the parent dying before the prctl.
_LAUNCHER = """\
import os, signal, sys
if sys.platform.startswith("linux"):
    try:
        import ctypes
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except Exception:
        pass
    if os.getppid() != int(sys.argv[1]):
        sys.exit("stac_api_server: parent died during start-up")
os.execv(sys.argv[2], sys.argv[2:])
"""


def rustac_command() -> list[str]:
    """``[python, /path/to/rustac]``: the rustac CLI of this Python environment."""
    # the console script next to the interpreter (the venv need not be on PATH), else PATH
    script = Path(sys.executable).parent / "rustac"
    if not script.is_file():
        found = shutil.which("rustac")
        if not found:
            raise StacApiServerError("the rustac console script is not installed (pip install rustac)")
        script = Path(found)
    return [sys.executable, str(script)]


#: printed by ``rustac serve`` once it has loaded everything and bound its port
_READY_MARKER = b"Serving a STAC API at"


def _serving_check(url: str, log_path: Path, http: requests.Session) -> Callable[[], bool]:
    """Readiness check of a starting ``rustac serve`` that logs to ``log_path``."""
    answering_since: float | None = None

    def ready() -> bool:
        nonlocal answering_since
        ok = http_ok(f"{url}/", timeout=2, session=http)
        now = time.monotonic()
        answering_since = (answering_since or now) if ok else None
        # rustac loads every file, then binds, then prints the marker: the marker
        # tells that the answer comes from *this* process and not from another
        # server on the same port (rustac then exits with "Address already in
        # use"). Without the marker (another rustac version?) a process that
        # stays up for a second while the port answers is taken as ready.
        return answering_since is not None and (
            _READY_MARKER in log_path.read_bytes() or now - answering_since > 1.0
        )

    return ready


def _start(
    files: list[Path], port: int, log_path: Path, startup_timeout: float
) -> tuple[subprocess.Popen, str]:
    url = f"http://127.0.0.1:{port}"
    args = ["serve", "--addr", f"127.0.0.1:{port}", *map(str, files)]
    cmd = [sys.executable, "-c", _LAUNCHER, str(os.getpid()), *rustac_command(), *args]
    shown = " ".join(["rustac", *args])  # for messages: the launcher code is noise
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            cmd,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        with requests.Session() as http:
            ready = _serving_check(url, log_path, http)
            if not wait_until_ready(proc, ready, timeout=startup_timeout, interval=0.05):
                problem = (
                    f"did not answer on {url} within {startup_timeout}s"
                    if proc.returncode is None
                    else f"exited with {proc.returncode} before answering"
                )
                raise StacApiServerError(
                    f"rustac serve {problem} (command: {shown}):\n{log_path.read_text(errors='replace')}"
                )
    except BaseException:
        stop_process(proc)
        raise
    return proc, url


@contextmanager
def serve_stac_api(
    catalog_json: Path,
    port: int | None = None,
    *,
    asset_hrefs: AssetHrefStyle = "uri",
    startup_timeout: float = 60.0,
) -> Iterator[str]:
    """Serve the static STAC catalog ``catalog_json`` as a STAC API in a ``rustac serve``
    process; yield its root URL ``http://127.0.0.1:PORT`` (no trailing slash) once it
    answers, with every collection and item loaded.

    ``port``: None picks a free one (retried if another process grabs it first).
    ``asset_hrefs``: local asset files are served as ``file://`` URIs ("uri", default;
    see the module docstring for why) or absolute paths ("path"); remote hrefs are kept.

    The catalog is read once at start-up: later changes to it are not served. The
    process is stopped, and its temporary files deleted, on exit.
    """
    with tempfile.TemporaryDirectory(prefix="stac-api-") as tmp:
        tmp_dir = Path(tmp)
        files = export_catalog(Path(catalog_json), tmp_dir / "export", asset_hrefs=asset_hrefs)
        attempts = 1 if port is not None else 3
        for attempt in range(attempts):
            try:
                proc, url = _start(
                    files, port if port is not None else free_port(), tmp_dir / "server.log", startup_timeout
                )
                break
            except StacApiServerError as e:
                if attempt + 1 == attempts or "in use" not in str(e).lower():
                    raise
        try:
            yield url
        finally:
            stop_process(proc)


def _main(argv: list[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(description="Serve a static STAC catalog as a STAC API (rustac).")
    parser.add_argument("catalog_json", type=Path)
    parser.add_argument("--port", type=int, default=None)
    parser.add_argument("--asset-hrefs", choices=["path", "uri"], default="uri")
    args = parser.parse_args(argv)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    with serve_stac_api(args.catalog_json, args.port, asset_hrefs=args.asset_hrefs) as url:
        print(url, flush=True)
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            pass
    return 0


if __name__ == "__main__":
    sys.exit(_main())
