"""The processes this backend runs and their specs: exactly what /processes lists.

Standard specs come from the installed openeo-processes-dask package; `process_specs/*.json` in the
repository hold our additions and overrides (same file name = the process id).
"""

from __future__ import annotations

import functools
import inspect
import json
from pathlib import Path

import openeo_processes_dask
from apicore import errors

PROJECT_SPECS_DIR = Path(__file__).resolve().parents[2] / "process_specs"
PACKAGE_SPECS_DIR = Path(openeo_processes_dask.__file__).parent / "specs" / "openeo-processes"

# Implemented by this backend, not by openeo-processes-dask (which has neither load_collection nor
# save_result, does not export its date processes, and loses `e` without its ml extra); their specs
# are in openeo-processes-dask (processes without one: process_specs/).
OWN_PROCESSES = {"load_collection", "save_result", "e", "date_shift", "date_between", "date_difference"}
# In openeo-processes-dask but not offered: no UDF runtime; non-standard experiments.
WITHHELD = {"run_udf", "apply_neighborhood_intertwin", "ddmc"}


@functools.lru_cache(maxsize=1)
def dask_implemented_ids() -> frozenset[str]:
    """Process ids with an implementation in openeo-processes-dask (``_and`` is ``and``)."""
    from openeo_processes_dask import process_implementations as implementations

    names = {name.lstrip("_") for name, obj in inspect.getmembers(implementations, inspect.isfunction)
             if obj.__module__.startswith("openeo_processes_dask")}
    return frozenset(names - WITHHELD)


class ProcessRegistry:
    def __init__(self, implemented: frozenset[str] | set[str] | None = None,
                 project_specs_dir: Path = PROJECT_SPECS_DIR):
        ids = set(dask_implemented_ids() if implemented is None else implemented) | OWN_PROCESSES
        specs = {path.stem: path for path in PACKAGE_SPECS_DIR.glob("*.json")}
        specs.update({path.stem: path for path in project_specs_dir.glob("*.json")})
        ids |= {path.stem for path in project_specs_dir.glob("*.json")}
        missing = sorted(i for i in ids if i not in specs)
        if missing:
            raise RuntimeError(f"processes without a spec: {missing}")
        self._specs = {pid: _public_spec(json.loads(specs[pid].read_text())) for pid in sorted(ids)}

    def ids(self) -> list[str]:
        return list(self._specs)

    def spec(self, process_id: str) -> dict:
        try:
            return self._specs[process_id]
        except KeyError:
            raise errors.ProcessUnsupported(process=process_id, namespace="backend") from None

    def __contains__(self, process_id: str) -> bool:
        return process_id in self._specs

    def specs(self) -> list[dict]:
        return list(self._specs.values())


def _public_spec(spec: dict) -> dict:
    """The spec as listed: the fields the API defines, `categories` always present."""
    keys = ("id", "summary", "description", "categories", "parameters", "returns", "deprecated",
            "experimental", "exceptions", "examples", "links", "process_graph")
    out = {key: spec[key] for key in keys if key in spec}
    out.setdefault("categories", [])
    return out
