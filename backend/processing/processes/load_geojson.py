"""load_geojson: GeoJSON (RFC 7946) as a vector cube (openEO proposal; openeo-processes-dask lacks it).

The GeoJSON is read by aggregate_spatial's reader (geometry_input.read_geometries: the same geometry
types, the ``crs`` member, its limits), and the result has the representation aggregate_spatial
returns and the vector writers (writers/vector.py) write: an xarray DataArray with a ``geometry``
dimension whose coordinate holds the shapely geometries under an xvec GeometryIndex with their CRS. Every feature
property (and a Feature ``id``, as ``id``) not chosen in ``properties`` is kept as a coordinate along
``geometry``, so saving the cube as GeoJSON gives the features back with their properties (names that
clash with dimension names, e.g. ``t`` or ``x``, get a trailing ``_``).

Values:

* ``properties`` empty (default): one-dimensional, one no-data value (NaN) per geometry.
* one property with scalar values: dimension ``properties`` with that property's name as its only label;
* one property with array values: labels ``0`` … ``n-1`` for the longest array (shorter ones padded);
* several properties: one label per property name (array values are refused there).

Missing values are no-data (NaN); numbers and booleans become float64, anything else a string cube.
GeometryCollection is refused (as the proposal says), and so are URL strings: use load_url.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import xarray as xr

from apicore import errors
from backend.processing.processes.geometry_input import Features, read_geometries
from backend.processing.processes.values import plain

PROCESS = "load_geojson"
DIMENSION = "properties"


def _invalid(parameter: str, reason: str) -> errors.OpenEOError:
    return errors.ProcessParameterInvalid(process=PROCESS, parameter=parameter, reason=reason)


def load_geojson(data: Any, properties: Any = None) -> xr.DataArray:
    return geojson_cube(data, properties, process=PROCESS, parameter="data")


def geojson_cube(document: Any, properties: Any = None, *, process: str = PROCESS,
                 parameter: str = "data") -> xr.DataArray:
    """The vector cube of a GeoJSON object; errors name ``process``/``parameter`` (load_url reuses it)."""
    names = _property_names(properties)
    if isinstance(document, str):
        raise errors.ProcessParameterInvalid(process=process, parameter=parameter, reason=(
            "expected a GeoJSON object, got a string; to read GeoJSON from a URL use load_url with "
            "format 'GeoJSON'"))
    if not isinstance(document, dict):
        raise errors.ProcessParameterInvalid(process=process, parameter=parameter,
                                             reason=f"expected a GeoJSON object, got {type(document).__name__}")
    try:
        features = read_geometries(document)
    except errors.ProcessParameterInvalid as exc:  # the reader names aggregate_spatial's parameter
        reason = exc.fields.get("reason") or exc.message
        raise errors.ProcessParameterInvalid(process=process, parameter=parameter, reason=reason) from None
    values, labels = _values(_raw_properties(document), names)
    return vector_cube(features, values, labels)


def _property_names(properties: Any) -> list[str]:
    properties = plain(properties)
    if properties is None:
        return []
    if not isinstance(properties, list) or not all(isinstance(p, str) for p in properties):
        raise _invalid("properties", f"expected a list of property names, got {properties!r}")
    if len(set(properties)) != len(properties):
        raise _invalid("properties", f"each property may be named once, got {properties}")
    return properties


def _raw_properties(document: dict) -> list[dict]:
    """The properties object of each geometry, in reader order (a bare geometry has none)."""
    kind = document.get("type")
    if kind == "FeatureCollection":
        items = document.get("features") or []
    elif kind == "Feature":
        items = [document]
    else:
        return [{}]
    return [item.get("properties") if isinstance(item.get("properties"), dict) else {} for item in items]


def _values(rows: list[dict], names: list[str]) -> tuple[np.ndarray, list | None]:
    """(values: (n,) without names, else (n, labels); the ``properties`` labels or None)."""
    n = len(rows)
    if not names:
        return np.full(n, np.nan), None
    if len(names) == 1 and any(isinstance(row.get(names[0]), list) for row in rows):
        arrays = [row.get(names[0]) for row in rows]
        width = max(len(a) for a in arrays if isinstance(a, list))
        table = [(a if isinstance(a, list) else [a]) + [None] * (width - (len(a) if isinstance(a, list) else 1))
                 for a in arrays]
        return _typed(table, names[0]), list(range(width))
    for name in names:
        bad = next((row[name] for row in rows if isinstance(row.get(name), (list, dict))), None)
        if bad is not None:
            raise _invalid("properties", f"property '{name}' has non-scalar values (e.g. {str(bad)[:80]}); only a "
                                         "single property may hold arrays")
    return _typed([[row.get(name) for name in names] for row in rows], ", ".join(names)), list(names)


def _typed(table: list[list], what: str) -> np.ndarray:
    flat = [v for row in table for v in row if v is not None]
    if any(isinstance(v, (dict, list)) for v in flat):
        raise _invalid("properties", f"the values of {what} must be numbers, booleans or strings")
    if all(isinstance(v, (int, float, bool)) for v in flat):
        return np.array([[np.nan if v is None else float(v) for v in row] for row in table], dtype=np.float64)
    return np.array([[None if v is None else str(v) for v in row] for row in table], dtype=object)


def vector_cube(features: Features, values: np.ndarray, labels: list | None) -> xr.DataArray:
    """Values along ``geometry`` (and ``properties`` when labels are given) as an xvec vector cube."""
    import xvec  # noqa: F401  (registers .xvec)

    dims = ["geometry"] if labels is None else ["geometry", DIMENSION]
    coords: dict[str, Any] = {"geometry": ("geometry", features.geoms)}
    if labels is not None:
        coords[DIMENSION] = labels
    for name, column in features.properties.items():
        if labels is not None and name in labels:
            continue  # its values are the cube's values (a second copy would clash in the writers)
        key = name
        while key in coords:  # e.g. a feature property called "properties"
            key += "_"
        coords[key] = ("geometry", column)
    cube = xr.DataArray(values, dims=dims, coords=coords)
    return cube.xvec.set_geom_indexes("geometry", crs=features.crs)
