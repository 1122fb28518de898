"""GET /udf_runtimes: the Python runtime UDFs run in, and the libraries they may import.

Versions are read from the installed distributions' metadata (nothing is imported)."""

from __future__ import annotations

import functools
import platform
from importlib import metadata

from apicore import errors

RUNTIME = "Python"
LIBRARIES = ("numpy", "xarray", "pandas", "scipy", "shapely", "openeo", "pyproj", "geopandas", "netCDF4")


def python_version() -> str:
    major, minor, _ = platform.python_version_tuple()
    return f"{major}.{minor}"


@functools.lru_cache(maxsize=1)
def udf_runtimes() -> dict:
    libraries = {}
    for name in LIBRARIES:
        try:
            libraries[name] = {"version": metadata.version(name)}
        except metadata.PackageNotFoundError:
            continue
    version = python_version()
    return {RUNTIME: {
        "title": f"Python {version}",
        "description": "Python UDFs with the openEO UDF contract of the `openeo` package (`apply_datacube`, "
                       "`apply_timeseries`, `UdfData`, `XarrayDataCube`), run in a sandbox: no network, no "
                       "files but a temporary directory, limited memory, CPU time and wall-clock time per chunk.",
        "type": "language",
        "default": version,
        "versions": {version: {"libraries": libraries}},
        "links": [{"href": "https://open-eo.github.io/openeo-python-client/udf.html", "rel": "about",
                   "title": "Python UDFs (openeo client documentation)"}],
    }}


def check_runtime(runtime: str, version: str | None) -> None:
    """Refuse what /udf_runtimes does not list (``Python`` in any case; version ``3`` or ``3.x``)."""
    if not isinstance(runtime, str) or runtime.lower() != RUNTIME.lower():
        raise errors.InvalidRuntime(runtime=runtime, supported=RUNTIME)
    if version not in (None, python_version(), python_version().split(".")[0]):
        raise errors.InvalidVersion(runtime=runtime, version=version, supported=python_version())
