"""Vector cubes (as aggregate_spatial makes them with xvec) as GeoJSON, CSV and netCDF.

Accepted input: a DataArray or Dataset with a dimension whose coordinate holds shapely geometries
(xvec: ``geometry`` with a GeometryIndex; any name works), optionally ``t`` and ``bands`` (or one other
dimension in its place, e.g. load_geojson's ``properties``); or a
GeoDataFrame (its columns become the variables). The CRS is the GeometryIndex's, else the cube's
``spatial_ref`` (what zonal_stats keeps from the raster), else unknown.
Internally every input becomes a Dataset with dims ``(geometry[, t])`` and one variable per band
label (a cube without ``bands``: one variable named after the cube, else ``value``). 1-D coordinates
along the geometry dimension (e.g. ``id``) are kept as extra properties/columns.

GeoJSON (format JSON, application/geo+json, result.geojson): a FeatureCollection, one Feature per
geometry (``id`` = ``feature_index`` = position), geometry reprojected to WGS84 (RFC 7946) when the CRS
is known, properties ``feature_index``, the extra coordinates, and one value per time step and band:
key ``"<date>/<band>"`` (``"<band>"`` without t), NaN → null. Foreign member
``"openeo:dimensions": {"t": [...], "bands": [...]}`` lists the labels in order.

CSV: one row per geometry × time step: ``feature_index``, extra coordinates, ``date`` (if t), one
column per band, and ``geometry`` (WKT in the cube's CRS) with option ``include_geometry``.

netCDF: dims ``geometry`` (+ ``t``, CF time), one variable per band (``long_name`` = label), the
``geometry`` coordinate holds the WKT of each geometry (read back with ``shapely.from_wkt``), a ``crs``
grid-mapping variable (CF attributes + ``crs_wkt`` + ``spatial_ref``) referenced by ``grid_mapping``.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import shapely
import xarray as xr

from . import raster_netcdf
from .common import (WrittenResult, cube_crs, geometry_dim, is_geometry_array, labels, sanitize_name, target,
                     unsuitable)
from .json_csv import jsonable

GEOJSON_MEDIA_TYPE = "application/geo+json"
GEOJSON_FILENAME = "result.geojson"
CSV_MEDIA_TYPE = "text/csv"
CSV_FILENAME = "result.csv"
NETCDF_MEDIA_TYPE = "application/x-netcdf"
NETCDF_FILENAME = "result.nc"


def vector_dataset(value, fmt: str):
    """(Dataset with dims (geometry[, t]) and one variable per band, CRS or None)."""
    import geopandas as gpd

    if isinstance(value, gpd.GeoDataFrame):
        crs = value.crs
        columns = {str(c): ("geometry", value[c].to_numpy()) for c in value.columns if c != value.geometry.name}
        ds = xr.Dataset(columns, coords={"geometry": np.asarray(value.geometry.values, dtype=object)})
        return ds, (None if crs is None else _rio_crs(crs))
    crs = cube_crs(value)
    dim = geometry_dim(value)
    gname = next(name for name, c in value.coords.items() if c.dims == (dim,) and _is_geoms(c))
    geoms = np.asarray(value[gname].values, dtype=object)
    value = value.drop_vars(gname)
    if dim != "geometry":
        value = value.drop_vars("geometry", errors="ignore").rename({dim: "geometry"})
    value = value.assign_coords(geometry=("geometry", geoms))
    if isinstance(value, xr.DataArray):
        split = _variables_dim(value)
        if split is not None:
            names = labels(value, split)
            ds = xr.Dataset({name: value.isel({split: i}, drop=True) for i, name in enumerate(names)})
        else:
            ds = value.to_dataset(name=str(value.name) if value.name is not None else "value")
    else:
        ds = value
    extra = [d for d in ds.dims if d not in ("geometry", "t")]
    if extra:
        raise unsuitable(fmt, f"vector cube dimensions {extra} cannot be written; allowed: geometry, t, bands")
    ds = ds.drop_vars([c for c in ds.coords if c not in ("geometry", "t") and ds[c].dims != ("geometry",)])
    order = [d for d in ("geometry", "t") if d in ds.dims]
    return ds.transpose(*order), crs


def _variables_dim(cube: xr.DataArray) -> str | None:
    """The dimension whose labels become variables: ``bands``, else the only dimension besides geometry and
    t (e.g. load_geojson's ``properties``)."""
    if "bands" in cube.dims:
        return "bands"
    other = [d for d in cube.dims if d not in ("geometry", "t")]
    return other[0] if len(other) == 1 else None


def _is_geoms(coord) -> bool:
    return is_geometry_array(np.asarray(coord.values))


def _rio_crs(crs):
    from rasterio.crs import CRS

    return CRS.from_wkt(crs.to_wkt())


def _extras(ds: xr.Dataset) -> dict[str, np.ndarray]:
    return {str(c): ds[c].values for c in ds.coords if c not in ("geometry", "t")}


def _columns(ds: xr.Dataset) -> dict[str, np.ndarray]:
    """Each variable as an (n_geometries, n_times) array (n_times = 1 without t)."""
    n = ds.sizes["geometry"]
    nt = ds.sizes.get("t", 1)
    out = {}
    for name, var in ds.data_vars.items():
        if "t" in ds.dims and "t" not in var.dims:
            var = var.expand_dims(t=ds.sizes["t"], axis=1)
        out[str(name)] = np.asarray(var.values).reshape(n, nt)
    return out


def write_geojson(value, options: dict, target_dir: Path) -> WrittenResult:
    ds, crs = vector_dataset(value, "JSON")
    geoms = ds["geometry"].values
    if crs is not None and crs.to_epsg() != 4326:
        from pyproj import Transformer

        transformer = Transformer.from_crs(crs.to_wkt(), "EPSG:4326", always_xy=True)
        geoms = shapely.transform(geoms, lambda xy: np.column_stack(transformer.transform(xy[:, 0], xy[:, 1])))
    times = labels(ds, "t")
    columns, extras = _columns(ds), _extras(ds)
    features = []
    for i, geom in enumerate(geoms):
        properties = {"feature_index": i}
        properties.update({name: jsonable(values[i]) for name, values in extras.items()})
        if times:  # t-major, as the GeoTIFF band order
            properties.update({f"{t}/{name}": jsonable(values[i, k])
                               for k, t in enumerate(times) for name, values in columns.items()})
        else:
            properties.update({name: jsonable(values[i, 0]) for name, values in columns.items()})
        features.append({"type": "Feature", "id": i,
                         "geometry": None if geom is None else shapely.geometry.mapping(geom),
                         "properties": properties})
    dimensions = {"t": times, "bands": list(columns)} if times else {"bands": list(columns)}
    document = {"type": "FeatureCollection", "openeo:dimensions": dimensions, "features": features}
    path = target(target_dir, GEOJSON_FILENAME)
    with path.open("w", encoding="utf-8") as file:
        json.dump(jsonable(document), file, allow_nan=False, separators=(",", ":"))
    return WrittenResult(path=path, media_type=GEOJSON_MEDIA_TYPE, filename=GEOJSON_FILENAME)


def write_csv(value, options: dict, target_dir: Path) -> WrittenResult:
    ds, _ = vector_dataset(value, "CSV")
    n, times = ds.sizes["geometry"], labels(ds, "t")
    nt = max(len(times), 1)
    table = {"feature_index": np.repeat(np.arange(n), nt)}
    table.update({name: np.repeat(values, nt) for name, values in _extras(ds).items()})
    if times:
        table["date"] = np.tile(np.asarray(times, dtype=object), n)
    for name, values in _columns(ds).items():
        while name in table:
            name += "_"
        table[name] = values.ravel()
    if options.get("include_geometry"):
        table["geometry"] = np.repeat(shapely.to_wkt(ds["geometry"].values), nt)
    path = target(target_dir, CSV_FILENAME)
    pd.DataFrame(table).to_csv(path, index=False, na_rep="")
    return WrittenResult(path=path, media_type=CSV_MEDIA_TYPE, filename=CSV_FILENAME)


def write_netcdf(value, options: dict, target_dir: Path) -> WrittenResult:
    ds, crs = vector_dataset(value, "netCDF")
    out = xr.Dataset(coords={"geometry": ("geometry", shapely.to_wkt(ds["geometry"].values).astype(object))})
    out["geometry"].attrs = {"long_name": "feature geometry as WKT", "geometry_encoding": "WKT"}
    for name in ("t", *[str(c) for c in ds.coords if c not in ("geometry", "t")]):
        if name in ds.coords:
            # (dims, values), not the DataArray: it would align on the shapely index and turn to NaN
            out = out.assign_coords({name: (ds[name].dims, ds[name].values)})
    if "t" in out.coords and np.issubdtype(out["t"].dtype, np.datetime64):
        out["t"].attrs.update({"standard_name": "time", "long_name": "time", "axis": "T"})
    encoding = {}
    for label, var in ds.data_vars.items():
        name = sanitize_name(label)
        while name in out.variables or name == "crs":
            name += "_"
        out[name] = var.drop_vars([c for c in var.coords if c != "t"])  # (the WKT coordinate replaces shapely)
        out[name].attrs = {"long_name": str(label)}
        if crs is not None:
            out[name].attrs["grid_mapping"] = "crs"
        if np.issubdtype(var.dtype, np.floating):
            encoding[name] = {"_FillValue": np.nan, "zlib": options["compression_level"] > 0,
                              "complevel": options["compression_level"] or None}
    if crs is not None:
        from pyproj import CRS

        attrs = CRS.from_wkt(crs.to_wkt()).to_cf()
        attrs["spatial_ref"] = attrs["crs_wkt"]
        out["crs"] = xr.DataArray(np.int32(0), attrs=attrs)
        out["geometry"].attrs["grid_mapping"] = "crs"
    out.attrs = {"Conventions": "CF-1.9", "title": "openEO save_result (vector cube)",
                 "source": "openEO backend"}
    for name, entry in encoding.items():
        if entry["complevel"] is None:
            del entry["complevel"]
    path = target(target_dir, NETCDF_FILENAME)
    out.to_netcdf(path, engine=raster_netcdf.ENGINE, format="NETCDF4", encoding=encoding)
    return WrittenResult(path=path, media_type=NETCDF_MEDIA_TYPE, filename=NETCDF_FILENAME)
