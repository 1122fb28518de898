"""Our own process implementations (what openeo-processes-dask lacks or gets wrong) and the registry
of everything a graph can call."""

from __future__ import annotations

import inspect

from backend.processing.engine.implementations import Implementation, Implementations, coerce_pg_types
from backend.processing.process_registry import ProcessRegistry
from backend.processing.processes.aggregate_spatial import aggregate_spatial
from backend.processing.processes.apply_dimension import apply_dimension
from backend.processing.processes.load_collection import load_collection
from backend.processing.processes.load_geojson import load_geojson
from backend.processing.processes.load_stac import load_stac
from backend.processing.processes.load_uploaded_files import load_uploaded_files
from backend.processing.processes.load_url import load_url
from backend.processing.processes.math_overrides import divide
from backend.processing.processes.ordering import order, sort
from backend.processing.processes.save_result import save_result
from backend.processing.processes.udf import run_udf, with_udf
from backend.processing.processes import (arithmetic, arrays, climatology, common_names, comparison, cubes,
                                         dates, inspect_process, logic, neighborhood, resample, statistics)

# Processes that need the RunContext (catalog, outputs, user).
CONTEXT_PROCESSES = {"load_collection": load_collection, "save_result": save_result}
CONTEXT_PROCESSES["load_stac"] = load_stac  # ours: no remote schema validation, fetches via backend.processing.fetching
# Plain replacements for openeo-processes-dask functions that get the spec wrong.
OVERRIDES = {"divide": divide, "aggregate_spatial": aggregate_spatial}
# Spec fixes (JSON nulls/booleans/strings/lists, wrong results), one module per family of processes;
# arithmetic's divide wraps math_overrides.divide with null handling.
for _fixes in (arithmetic.FIXES, arrays.FIXES, comparison.FIXES, cubes.FIXES, dates.FIXES, logic.FIXES,
               neighborhood.FIXES, resample.FIXES, statistics.FIXES):
    OVERRIDES.update(_fixes)
OVERRIDES["apply_dimension"] = apply_dimension  # labels kept, dim_labels for callbacks (WP6 workflows)
OVERRIDES.update(common_names.PROCESSES)  # bands by common name (ndvi, filter_bands); merge_cubes keeps them
OVERRIDES.update(order=order, sort=sort)  # N-D arrays along the callback's axis (after arrays.FIXES' list fixes)
# Processes openeo-processes-dask lacks; load_url reads through fetching's policy.
OVERRIDES.update(climatology.PROCESSES, load_geojson=load_geojson)
CONTEXT_PROCESSES["load_url"] = load_url
CONTEXT_PROCESSES["load_uploaded_files"] = load_uploaded_files  # the caller's own /files only
CONTEXT_PROCESSES["inspect"] = inspect_process.inspect  # into the job log (processes-dask only prints)
CONTEXT_PROCESSES["run_udf"] = run_udf  # in the sandbox, with the limits of the settings
# Callbacks that are one run_udf get whole chunks (processes/udf.py): (callback, its data parameter, reduces).
UDF_CALLBACKS = {"apply": ("process", "x", False), "apply_dimension": ("process", "data", False),
                 "reduce_dimension": ("reducer", "data", True), "aggregate_temporal": ("reducer", "data", True)}


def build_implementations(registry: ProcessRegistry) -> Implementations:
    from openeo_processes_dask import process_implementations as dask_processes

    dask_functions = {name.lstrip("_"): function
                      for name, function in inspect.getmembers(dask_processes, inspect.isfunction)
                      if function.__module__.startswith("openeo_processes_dask")}
    entries = {}
    for process_id in registry.ids():
        if process_id in CONTEXT_PROCESSES:
            entries[process_id] = Implementation(CONTEXT_PROCESSES[process_id], registry.spec(process_id),
                                                 coerce_pg_types=False, wants_context=True)
        elif process_id in OVERRIDES:
            entries[process_id] = Implementation(OVERRIDES[process_id], registry.spec(process_id),
                                                 coerce_pg_types=False, wants_context=False)
        elif process_id in dask_functions:
            entries[process_id] = Implementation(dask_functions[process_id], registry.spec(process_id),
                                                 coerce_pg_types=True, wants_context=False)
    for process_id, (callback, data_parameter, reduces) in UDF_CALLBACKS.items():
        if process_id in entries:
            entry = entries[process_id]
            coerce = (lambda arguments, spec=entry.spec: coerce_pg_types(spec, arguments)) if entry.coerce_pg_types \
                else None
            entries[process_id] = Implementation(
                with_udf(process_id, entry.function, callback, data_parameter, reduces, coerce),
                entry.spec, coerce_pg_types=False, wants_context=True)
    return Implementations(entries)
