"""Whether the processing engine (the `backend` extra) is installed.

The distribution installs the aggregator with light dependencies only; `openeo-backend serve`/`worker` and
`openeo-aggregator demo` need the engine and say how to install it instead of failing with a traceback.
Imports nothing of the engine (it only looks the modules up).
"""

from __future__ import annotations

import importlib.util

DISTRIBUTION = "openeo-backend-federation"
INSTALL_COMMAND = f"pip install '{DISTRIBUTION}[backend]'"
# A module of each of the extra's main distributions (pyproject.toml: [project.optional-dependencies] backend)
ENGINE_MODULES = ("dask", "distributed", "xarray", "rasterio", "rioxarray", "odc.stac", "odc.geo", "geopandas",
                  "pystac", "pystac_client", "openeo_processes_dask", "openeo_pg_parser_networkx")


def missing_engine_modules() -> list[str]:
    missing = []
    for name in ENGINE_MODULES:
        try:
            found = importlib.util.find_spec(name) is not None
        except ModuleNotFoundError:  # the parent package (odc) is missing
            found = False
        if not found:
            missing.append(name)
    return missing


def engine_missing_message(command: str) -> str | None:
    """None when the engine is installed, else what to do."""
    missing = missing_engine_modules()
    if not missing:
        return None
    return (f"`{command}` needs the processing engine (the `backend` extra), which is not installed (missing: "
            f"{', '.join(missing)}). Install it with: {INSTALL_COMMAND}")
