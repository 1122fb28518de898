"""pyproject's `dependencies` declare exactly what the product imports (backend/, apicore/, aggregator/).

Every import is read with `ast` (also the lazy ones inside functions), mapped to its distribution with
importlib.metadata.packages_distributions() and compared with the declared requirements: an import whose
distribution is not declared fails (it works only while something else happens to install it), and so
does a declared distribution that nothing imports, unless RUNTIME_ONLY says who needs it.
"""

from __future__ import annotations

import ast
import importlib.metadata
import re
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PRODUCT_PACKAGES = ("backend", "apicore", "aggregator")

# Declared, but never imported by our code: each entry says what needs it at run time.
RUNTIME_ONLY = {
    # openeo-processes-dask is installed without its [implementations] extra (it demands GDAL's bindings);
    # these are the extra's requirements its modules import when we import process_implementations.
    "planetary-computer": "imported by openeo_processes_dask...cubes.load (and odc.stac)",
    "dask-geopandas": "imported by openeo_processes_dask.process_implementations.data_model",
    "stac-validator": "imported by openeo_processes_dask...cubes.load",
    # Optional imports of xarray that our writers rely on.
    "netcdf4": "xarray's engine='netcdf4' (writers/raster_netcdf.py, writers/vector.py)",
    "zarr": "xarray's Dataset.to_zarr (writers/raster_zarr.py)",
}


def canonicalize_name(name: str) -> str:
    """PEP 503 normal form: `PyYAML`, `pyyaml` and `py_yaml` are one distribution."""
    return re.sub(r"[-_.]+", "-", name).lower()


def requirement_name(spec: str) -> str:
    return re.match(r"[A-Za-z0-9][A-Za-z0-9._-]*", spec.strip()).group(0)


def imported_top_level_modules() -> dict[str, set[str]]:
    """Top-level module -> files importing it, over every absolute import in the product packages."""
    found: dict[str, set[str]] = {}
    for package in PRODUCT_PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text(), str(path))):
                if isinstance(node, ast.Import):
                    names = [alias.name for alias in node.names]
                elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                    names = [node.module]
                else:
                    continue
                for name in names:
                    found.setdefault(name.split(".")[0], set()).add(str(path.relative_to(ROOT)))
    return found


def declared_distributions() -> set[str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    return {canonicalize_name(requirement_name(spec)) for spec in project["dependencies"]}


def imported_distributions() -> tuple[dict[str, set[str]], dict[str, set[str]]]:
    """(distribution -> importing files, uninstalled module -> importing files)."""
    module_to_dists = importlib.metadata.packages_distributions()
    declared = declared_distributions()
    by_dist: dict[str, set[str]] = {}
    unknown: dict[str, set[str]] = {}
    for module, files in imported_top_level_modules().items():
        if module in sys.stdlib_module_names or module in PRODUCT_PACKAGES:
            continue
        dists = {canonicalize_name(name) for name in module_to_dists.get(module, [])}
        if not dists:
            unknown[module] = files
            continue
        # A namespace shared by several distributions (odc.*, pystac's extension packages): the declared
        # ones among them provide it; if none is declared, all of them are reported.
        for dist in (dists & declared) or dists:
            by_dist.setdefault(dist, set()).update(files)
    return by_dist, unknown


def test_every_import_is_declared():
    by_dist, unknown = imported_distributions()
    assert not unknown, f"imported but not installed (declare them in pyproject.toml): {unknown}"
    undeclared = {dist: sorted(files)[:3] for dist, files in by_dist.items() if dist not in declared_distributions()}
    assert not undeclared, f"imported but not declared in pyproject's dependencies: {undeclared}"


def test_every_declared_distribution_is_used():
    by_dist, _ = imported_distributions()
    unused = declared_distributions() - set(by_dist) - {canonicalize_name(name) for name in RUNTIME_ONLY}
    assert not unused, (f"declared but never imported by backend/, apicore/, aggregator/: {sorted(unused)}; "
                        "drop them, or add them to RUNTIME_ONLY saying what needs them")


def test_runtime_only_entries_are_declared_and_not_imported():
    by_dist, _ = imported_distributions()
    for name in RUNTIME_ONLY:
        dist = canonicalize_name(name)
        assert dist in declared_distributions(), f"{name} is in RUNTIME_ONLY but not declared"
        assert dist not in by_dist, f"{name} is imported by {sorted(by_dist[dist])[:3]}: remove it from RUNTIME_ONLY"
