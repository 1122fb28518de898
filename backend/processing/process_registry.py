"""The processes this backend runs and their specs: exactly what /processes lists.

Which processes: the ones openeo-processes-dask implements (minus ``WITHHELD``) plus ours
(``OWN_PROCESSES``). Their specs, first found wins (all inside the package, see
backend/process_specs/README.md):

1. ``backend/process_specs/*.json`` — our overrides (real differences of our implementation);
2. ``backend/process_specs/openeo-processes/`` — a pinned copy of the official specs
   (``*.json`` and ``proposals/*.json``), refreshed by scripts/update_process_specs.py;
3. the specs shipped with openeo-processes-dask (processes without an official spec).

A process without any spec stops start-up (``MissingProcessSpecs``): it is never dropped silently.
"""

from __future__ import annotations

import functools
import inspect
import json
from collections.abc import Iterable
from pathlib import Path

from apicore import errors

SPECS_DIR = Path(__file__).resolve().parents[1] / "process_specs"  # backend/process_specs
OFFICIAL_SUBDIR = "openeo-processes"

# Implemented by this backend, not by openeo-processes-dask (which has neither load_collection nor
# save_result, does not export its date processes, loses `e` without its ml extra, and lacks the rest).
OWN_PROCESSES = frozenset({
    "load_collection", "save_result", "e", "date_shift", "date_between", "date_difference",
    "anomaly", "climatological_normal", "load_geojson", "load_url", "apply_neighborhood", "load_uploaded_files",
})
# In openeo-processes-dask but not offered: non-standard experiments (run_udf is ours: processes/udf.py).
WITHHELD = frozenset({"apply_neighborhood_intertwin", "ddmc"})


class MissingProcessSpecs(RuntimeError):
    """An offered process has no spec in any of the spec folders: the installation is incomplete."""


@functools.lru_cache(maxsize=1)
def dask_implemented_ids() -> frozenset[str]:
    """Process ids with an implementation in openeo-processes-dask (``_and`` is ``and``)."""
    from openeo_processes_dask import process_implementations as implementations

    names = {name.lstrip("_") for name, obj in inspect.getmembers(implementations, inspect.isfunction)
             if obj.__module__.startswith("openeo_processes_dask")}
    return frozenset(names - WITHHELD)


def offered_ids(implemented: Iterable[str] | None = None) -> frozenset[str]:
    """The ids /processes lists: openeo-processes-dask's implementations and ours."""
    return frozenset(dask_implemented_ids() if implemented is None else implemented) | OWN_PROCESSES


def dask_specs_dir() -> Path:
    import openeo_processes_dask

    return Path(openeo_processes_dask.__file__).parent / "specs" / "openeo-processes"


def spec_files(folder: Path) -> dict[str, Path]:
    """process id → spec file of one spec folder (its ``proposals/`` included)."""
    files = {path.stem: path for path in folder.glob("proposals/*.json")}
    files.update({path.stem: path for path in folder.glob("*.json")})
    return files


class ProcessRegistry:
    def __init__(self, implemented: Iterable[str] | None = None, specs_dir: Path | None = None):
        specs_dir = SPECS_DIR if specs_dir is None else specs_dir
        ids = offered_ids(implemented)
        own = spec_files(specs_dir)
        official_dir = specs_dir / OFFICIAL_SUBDIR
        official = spec_files(official_dir)
        if not official:
            raise MissingProcessSpecs(
                f"no official process specs in {official_dir}: the package is incomplete (reinstall it; in a "
                "checkout: scripts/update_process_specs.py restores them)")
        stray = sorted(set(own) - ids)
        if stray:
            raise MissingProcessSpecs(f"specs in {specs_dir} for processes this backend does not implement: "
                                      f"{stray} (remove them, or add the implementation)")
        dask = spec_files(dask_specs_dir())
        layers = (("own", own), ("openeo-processes", official), ("openeo-processes-dask", dask))
        self._sources: dict[str, str] = {}
        paths: dict[str, Path] = {}
        for pid in ids:
            for source, files in layers:
                if pid in files:
                    self._sources[pid], paths[pid] = source, files[pid]
                    break
        missing = sorted(ids - set(paths))
        if missing:
            raise MissingProcessSpecs(
                f"offered processes without a spec: {missing} (looked in {specs_dir}, {official_dir} and "
                f"{dask_specs_dir()}); the package is incomplete, or a new process needs its spec there")
        self._specs = {pid: _public_spec(json.loads(paths[pid].read_text(encoding="utf-8"))) for pid in sorted(ids)}

    def ids(self) -> list[str]:
        return list(self._specs)

    def spec(self, process_id: str) -> dict:
        try:
            return self._specs[process_id]
        except KeyError:
            raise errors.ProcessUnsupported(process=process_id, namespace="backend") from None

    def source(self, process_id: str) -> str:
        """Where the spec comes from: ``own``, ``openeo-processes`` or ``openeo-processes-dask``."""
        return self._sources[process_id]

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
