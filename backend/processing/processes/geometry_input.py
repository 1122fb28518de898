"""aggregate_spatial's ``geometries`` input: GeoJSON, a GeoDataFrame/GeoSeries, a vector cube or a
shapely geometry as ``Features`` (shapely geometries + CRS + per-feature properties), with the size
limits and checks applied, and reprojection to the cube's CRS.

Also the reader of load_geojson (which renames the parameter in the errors). URL strings are refused
here, never fetched.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import shapely
import xarray as xr
from pyproj import CRS, Transformer

from apicore import errors

PROCESS = "aggregate_spatial"
MAX_FEATURES = 100_000
MAX_VERTICES = 5_000_000
WGS84 = CRS.from_epsg(4326)
GEOJSON_GEOMETRY_TYPES = ("Polygon", "MultiPolygon", "Point", "MultiPoint", "LineString", "MultiLineString")
RESERVED_PROPERTIES = {"geometry", "feature_index", "t", "bands", "date", "x", "y", "spatial_ref", "crs"}


def invalid(parameter: str, reason: str) -> errors.OpenEOError:
    return errors.ProcessParameterInvalid(process=PROCESS, parameter=parameter, reason=reason)


@dataclass
class Features:
    geoms: np.ndarray  # shapely geometries (object array), empty geometries for null
    crs: CRS
    properties: dict[str, np.ndarray] = field(default_factory=dict)


def read_geometries(geometries: Any) -> Features:
    """The geometries argument as shapely geometries + CRS + properties, with the size limits applied."""
    if isinstance(geometries, str):
        if "://" in geometries or geometries.lower().startswith(("www.", "file:")):
            raise invalid("geometries", "URLs are not fetched by this backend (the server does not download "
                                        "files given by users); pass the geometries inline as GeoJSON")
        raise invalid("geometries", "expected GeoJSON (an object), a vector cube or a geometry, got a string")
    if isinstance(geometries, dict):
        features = _from_geojson(geometries)
    elif isinstance(geometries, (xr.DataArray, xr.Dataset)):
        features = _from_vector_cube(geometries)
    elif isinstance(geometries, shapely.Geometry):
        features = Features(np.array([geometries], dtype=object), WGS84)
    else:
        try:
            import geopandas as gpd
        except ImportError:  # pragma: no cover
            gpd = None
        if gpd is not None and isinstance(geometries, (gpd.GeoDataFrame, gpd.GeoSeries)):
            features = _from_geodataframe(geometries)
        else:
            raise invalid("geometries", f"expected GeoJSON or a vector cube, got {type(geometries).__name__}")
    _check_geometries(features.geoms)
    return features


def _from_geojson(document: dict) -> Features:
    kind = document.get("type")
    crs = _geojson_crs(document.get("crs"))
    if kind == "FeatureCollection":
        items = document.get("features")
        if not isinstance(items, list):
            raise invalid("geometries", "a FeatureCollection needs a 'features' array")
        _check_count(len(items))
        if not items:
            raise invalid("geometries", "the FeatureCollection has no features")
        for index, item in enumerate(items):
            if not isinstance(item, dict) or item.get("type") != "Feature":
                raise invalid("geometries", f"features[{index}] is not a GeoJSON Feature")
    elif kind == "Feature":
        items = [document]
    elif kind in GEOJSON_GEOMETRY_TYPES:
        return Features(np.array([_shape(document, "the geometry")], dtype=object), crs)
    elif kind == "GeometryCollection":
        raise invalid("geometries", "GeoJSON GeometryCollection is not supported (see the process "
                                    "description): send a FeatureCollection with one Feature per geometry")
    else:
        raise invalid("geometries", f"expected a GeoJSON FeatureCollection, Feature or geometry, got type {kind!r}")
    geoms = np.empty(len(items), dtype=object)
    for index, item in enumerate(items):
        where = "the Feature" if kind == "Feature" else f"features[{index}]"
        geometry = item.get("geometry")
        if geometry is None:
            geoms[index] = shapely.Polygon()  # no values, but the feature stays (spec: empty geometries)
            continue
        if not isinstance(geometry, dict) or geometry.get("type") not in GEOJSON_GEOMETRY_TYPES:
            got = geometry.get("type") if isinstance(geometry, dict) else type(geometry).__name__
            raise invalid("geometries", f"{where}: unsupported geometry {got!r}; supported: "
                                        f"{', '.join(GEOJSON_GEOMETRY_TYPES)}")
        geoms[index] = _shape(geometry, where)
    properties = _feature_properties(items)
    return Features(geoms, crs, properties)


def _shape(geometry: dict, where: str) -> shapely.Geometry:
    try:
        geom = shapely.geometry.shape(geometry)
    except Exception as exc:  # noqa: BLE001  (shapely raises many kinds on malformed coordinates)
        raise invalid("geometries", f"{where}: malformed {geometry.get('type')} coordinates ({exc})") from None
    return geom


def _geojson_crs(value: Any) -> CRS:
    """The ``crs`` member: none → EPSG:4326; ``{"type": "name", "properties": {"name": ...}}``,
    ``{"type": "EPSG", "properties": {"code": n}}``, an EPSG code or a CRS string."""
    if value is None:
        return WGS84
    spec = value
    if isinstance(value, dict):
        props = value.get("properties") or {}
        spec = props.get("name") or props.get("code")
    try:
        if isinstance(spec, bool) or spec is None:
            raise ValueError("no CRS")
        if isinstance(spec, int) or (isinstance(spec, str) and spec.strip().isdigit()):
            return CRS.from_epsg(int(spec))
        return CRS.from_user_input(spec)
    except Exception:  # noqa: BLE001  (pyproj raises CRSError, ValueError, TypeError)
        raise invalid("geometries", f"unknown CRS in the 'crs' member: {json.dumps(value, default=str)[:200]}") from None


def _feature_properties(items: list[dict]) -> dict[str, np.ndarray]:
    names: list[str] = []
    for item in items:
        props = item.get("properties")
        if isinstance(props, dict):
            names.extend(str(k) for k in props if str(k) not in names)
    columns = {}
    for name in names:
        column = [(item.get("properties") or {}).get(name) for item in items]
        columns[_property_name(name, columns)] = _column(column)
    ids = [item.get("id") for item in items]
    if any(i is not None for i in ids) and "id" not in columns:
        columns["id"] = _column(ids)
    return columns


def _property_name(name: str, taken: dict) -> str:
    name = name if name not in RESERVED_PROPERTIES else f"{name}_"
    while name in taken or name in RESERVED_PROPERTIES:
        name += "_"
    return name


def _column(values: list) -> np.ndarray:
    """Property values as one typed array: int64 / float64 (null → NaN) / bool / str (null → "")."""
    present = [v for v in values if v is not None]
    if present and all(isinstance(v, bool) for v in present) and len(present) == len(values):
        return np.array(values, dtype=bool)
    if present and all(isinstance(v, int) and not isinstance(v, bool) for v in present) and len(present) == len(values):
        return np.array(values, dtype=np.int64)
    if present and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in present):
        return np.array([np.nan if v is None else float(v) for v in values], dtype=np.float64)
    return np.array(["" if v is None else v if isinstance(v, str) else json.dumps(v, default=str) for v in values],
                    dtype=object)


def _from_geodataframe(frame) -> Features:
    import geopandas as gpd

    if isinstance(frame, gpd.GeoSeries):
        frame = gpd.GeoDataFrame(geometry=frame)
    _check_count(len(frame))
    crs = WGS84 if frame.crs is None else CRS.from_user_input(frame.crs)
    geoms = np.array([shapely.Polygon() if g is None else g for g in frame.geometry.values], dtype=object)
    properties = {}
    for name in frame.columns:
        if name == frame.geometry.name:
            continue
        values = frame[name].to_numpy()
        key = _property_name(str(name), properties)
        properties[key] = values if values.dtype != object else _column(values.tolist())
    return Features(geoms, crs, properties)


def _from_vector_cube(cube: xr.DataArray | xr.Dataset) -> Features:
    from backend.processing.writers.common import cube_crs, geometry_dim, is_geometry_array

    dim = geometry_dim(cube)
    if dim is None:
        raise invalid("geometries", "the data cube given as geometries has no geometry dimension")
    _check_count(cube.sizes[dim])
    name = next(n for n, c in cube.coords.items() if c.dims == (dim,) and is_geometry_array(np.asarray(c.values)))
    geoms = np.array([shapely.Polygon() if g is None else g for g in cube[name].values], dtype=object)
    crs = cube_crs(cube)
    properties = {}
    variables = dict(cube.coords.items())
    if isinstance(cube, xr.Dataset):
        variables.update(cube.data_vars.items())
    for key, var in variables.items():
        if key != name and var.dims == (dim,):
            properties[_property_name(str(key), properties)] = np.asarray(var.values)
    return Features(geoms, WGS84 if crs is None else CRS.from_user_input(crs.to_wkt()), properties)


def _check_count(count: int) -> None:
    if count > MAX_FEATURES:
        # no process name here: load_geojson and load_url read GeoJSON through this too
        raise invalid("geometries", f"{count:,} geometries given; at most {MAX_FEATURES:,} are allowed in one "
                                    "process call: split them into several calls")


def _check_geometries(geoms: np.ndarray) -> None:
    _check_count(len(geoms))
    if len(geoms) == 0:
        raise invalid("geometries", "no geometries given")
    vertices = int(shapely.get_num_coordinates(geoms).sum())
    if vertices > MAX_VERTICES:
        raise invalid("geometries", f"the geometries have {vertices:,} coordinates; at most {MAX_VERTICES:,} are "
                                    "allowed: simplify them or split them into several calls")
    types = shapely.get_type_id(geoms)
    if (types == shapely.GeometryType.GEOMETRYCOLLECTION).any():
        raise invalid("geometries", "geometry collections are not supported: one geometry per feature")
    coords = shapely.get_coordinates(geoms)
    if not np.isfinite(coords).all():
        raise invalid("geometries", "coordinates must be finite numbers")


def to_crs(geoms: np.ndarray, source: CRS, target: CRS) -> np.ndarray:
    """Geometries reprojected (always x/y = lon/lat order, as GeoJSON); edges of geographic input longer
    than ~1 km are densified first, so they follow the straight lon/lat line after projection."""
    if source.equals(target, ignore_axis_order=True):
        return geoms
    if source.is_geographic and not target.is_geographic:
        geoms = shapely.segmentize(geoms, 0.01)
    transformer = Transformer.from_crs(source, target, always_xy=True)

    def project(xy: np.ndarray) -> np.ndarray:
        x, y = transformer.transform(xy[:, 0], xy[:, 1])
        return np.column_stack([x, y])

    out = shapely.transform(geoms, project)
    bad = ~np.isfinite(shapely.bounds(out)).all(axis=1) & ~shapely.is_empty(out)
    if bad.any():
        raise invalid("geometries", f"geometry {int(np.flatnonzero(bad)[0])} cannot be projected to the cube's CRS "
                                    f"({target.to_string()})")
    return out
