"""pyproject's `dependencies` plus its `backend` extra declare exactly what the product imports (backend/,
apicore/, aggregator/), and the base `dependencies` alone are what the aggregator imports.

Every import is read with `ast` (also the lazy ones inside functions), mapped to its distribution with
importlib.metadata.packages_distributions() and compared with the declared requirements: an import whose
distribution is not declared fails (it works only while something else happens to install it), and so
does a declared distribution that nothing imports, unless RUNTIME_ONLY says who needs it. The aggregator's
share is apicore/ and aggregator/ (every import) plus the backend modules they load (the imports those
run when imported: module level, outside TYPE_CHECKING); it must need nothing of the `backend` extra.
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
    "h5netcdf": "xarray's engine='h5netcdf' (writers/raster_netcdf.py, writers/vector.py, load_uploaded_files)",
    "h5py": "h5netcdf's HDF5 backend (h5netcdf declares it optional)",
    "scipy": "xarray's engine='scipy': uploaded classic netCDF files (processes/load_uploaded_files.py)",
    "netcdf4": "a library UDFs may import (backend/processing/udf/runtimes.py)",
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
                    top = name.split(".")[0]
                    if (path.parent / f"{top}.py").is_file():  # a sibling module of a script (udf/worker.py)
                        continue
                    found.setdefault(top, set()).add(str(path.relative_to(ROOT)))
    return found


def _project() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]


def base_distributions() -> set[str]:
    return {canonicalize_name(requirement_name(spec)) for spec in _project()["dependencies"]}


def declared_distributions() -> set[str]:
    """The base dependencies and the engine (the `backend` extra)."""
    engine = _project()["optional-dependencies"]["backend"]
    return base_distributions() | {canonicalize_name(requirement_name(spec)) for spec in engine}


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


# The aggregator's light share ----------------------------------------------------------------------------

LIGHT_PACKAGES = ("apicore", "aggregator")
ENGINE = ("dask", "distributed", "xarray", "rasterio", "rioxarray", "odc-stac", "odc-geo", "geopandas", "numpy",
          "pandas", "openeo-processes-dask", "openeo-pg-parser-networkx", "pystac", "pystac-client")


def _module_file(name: str) -> Path | None:
    path = ROOT / Path(*name.split("."))
    for candidate in (path / "__init__.py", path.with_suffix(".py")):
        if candidate.is_file():
            return candidate
    return None


def _imports(path: Path, module: str, everywhere: bool) -> set[str]:
    """Absolute names imported by a module: all of them, or only those run at import time."""
    tree = ast.parse(path.read_text(), str(path))
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    nodes = ast.walk(tree) if everywhere else _import_time_nodes(tree.body)
    names = set()
    for node in nodes:
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")[:len(package.split(".")) - node.level + 1]
                base = ".".join(parts + ([node.module] if node.module else []))
            names.add(base)
            names.update(f"{base}.{alias.name}" for alias in node.names)
    return names


def _import_time_nodes(body: list[ast.stmt]):
    """The statements a module runs when imported: not function bodies, not `if TYPE_CHECKING:` blocks."""
    for node in body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            continue
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            yield from _import_time_nodes(node.orelse)
            continue
        yield node
        for field in ("body", "orelse", "finalbody", "handlers"):
            yield from _import_time_nodes(getattr(node, field, []))


def light_third_party_modules() -> dict[str, set[str]]:
    """Top-level third-party module -> our modules importing it, over the aggregator's share."""
    todo = [".".join(p.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")
            for package in LIGHT_PACKAGES for p in (ROOT / package).rglob("*.py")]
    seen: set[str] = set()
    found: dict[str, set[str]] = {}
    while todo:
        module = todo.pop()
        path = _module_file(module)
        if module in seen or path is None:
            continue
        seen.add(module)
        parts = module.split(".")
        todo.extend(".".join(parts[:i]) for i in range(1, len(parts)))  # parent packages run first
        for name in _imports(path, module, everywhere=module.split(".")[0] in LIGHT_PACKAGES):
            top = name.split(".")[0]
            if top in PRODUCT_PACKAGES:
                todo.append(name)
            elif top not in sys.stdlib_module_names and top != "__future__":
                found.setdefault(top, set()).add(module)
    return found


def test_the_aggregator_needs_only_the_base_dependencies():
    module_to_dists = importlib.metadata.packages_distributions()
    base = base_distributions()
    outside = {}
    for module, importers in light_third_party_modules().items():
        dists = {canonicalize_name(name) for name in module_to_dists.get(module, [module])}
        if not dists & base:
            outside[module] = sorted(importers)[:3]
    assert not outside, f"the aggregator imports these, which the base dependencies do not install: {outside}"


def test_the_base_dependencies_hold_no_engine():
    assert base_distributions().isdisjoint(canonicalize_name(name) for name in ENGINE)
    assert {canonicalize_name(name) for name in ENGINE} <= declared_distributions()
