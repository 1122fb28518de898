"""Data-cube processes that openeo-processes-dask gets wrong: filter_labels, filter_temporal,
aggregate_temporal_period, filter_spatial.

* ``filter_labels`` keeps only the *first* label for which the condition holds (it selects
  ``np.argwhere(...)[0]``), and passes the labels as a numpy array, not one label at a time.
* ``filter_temporal`` ignores ``dimension`` (it always filters the first temporal dimension, and fails
  for a dimension whose name does not look temporal) and turns integer cubes into float
  (``data.where(..., drop=True)`` before selecting).
* ``aggregate_temporal_period`` builds dekad/decade/tropical-season periods from a dimension that
  must literally be called ``t``, numbers dekads by day of year / 10 (so 1 February is in dekad 3),
  labels hour/day/week/month/season/year periods with timestamps instead of the spec's labels
  (``2024-02``, ``2023-djf``, ``2022-52`` ...), accepts no ``context`` and omits empty periods.
* ``filter_spatial`` fails for every cube ("applied function returned data with an unexpected number
  of dimensions" from its filter_bbox step; on in-memory cubes "'NoneType' object is not subscriptable")
  and raises UnboundLocalError for a Feature or MultiPolygon.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Any, Callable

import numpy as np
import pandas as pd
import xarray as xr
from openeo_processes_dask.process_implementations.exceptions import (DimensionNotAvailable,
                                                                      TemporalExtentEmpty,
                                                                      TooManyDimensions)

from apicore import errors
from backend.processing.processes.values import plain

UTC = dt.timezone.utc


def _label_value(value: Any) -> Any:
    """A dimension label as the child process sees it: dates as ISO date-time strings (UTC)."""
    if isinstance(value, np.datetime64):
        return pd.Timestamp(value).strftime("%Y-%m-%dT%H:%M:%SZ")
    return plain(value)


def filter_labels(data: xr.DataArray, condition: Callable, dimension: str, context: Any = None) -> xr.DataArray:
    if dimension not in data.dims:
        raise DimensionNotAvailable(f"A dimension with the specified name does not exist: {dimension!r} "
                                    f"(dimensions: {list(data.dims)})")
    keep = [i for i, label in enumerate(data[dimension].values)
            if plain(condition(named_parameters={"value": _label_value(label), "context": context})) is True]
    return data.isel({dimension: keep})


def _temporal_dimension(data: xr.DataArray, dimension: str | None) -> str:
    if dimension is not None:
        if dimension not in data.dims:
            raise DimensionNotAvailable(f"A dimension with the specified name does not exist: {dimension!r} "
                                        f"(dimensions: {list(data.dims)})")
        return dimension
    temporal = list(data.openeo.temporal_dims)
    if not temporal:
        raise DimensionNotAvailable(f"The data cube has no temporal dimension (dimensions: {list(data.dims)})")
    if len(temporal) > 1:
        raise TooManyDimensions(f"The data cube has several temporal dimensions ({temporal}): set `dimension`.")
    return temporal[0]


def _utc_naive(text: Any) -> np.datetime64 | None:
    """An RFC 3339 date-time, date or year as a UTC numpy datetime (None for an open end)."""
    text = plain(text)
    if text is None:
        return None
    text = str(text).strip()
    if re.fullmatch(r"\d{4}", text):
        text += "-01-01"
    try:
        value = dt.datetime.fromisoformat(text)
    except ValueError:
        raise errors.ProcessParameterInvalid(f"{text!r} is not a valid date or date-time: write it as RFC 3339, "
                                             "e.g. 2020-06-01 or 2020-06-01T12:00:00Z.") from None
    if value.tzinfo is not None:
        value = value.astimezone(UTC).replace(tzinfo=None)
    return np.datetime64(value, "ns")


def _times(data: xr.DataArray, dim: str) -> pd.DatetimeIndex:
    times = pd.DatetimeIndex(pd.to_datetime(data[dim].values))
    return times.tz_convert("UTC").tz_localize(None) if times.tz is not None else times


def filter_temporal(data: xr.DataArray, extent: Any, dimension: str | None = None) -> xr.DataArray:
    dim = _temporal_dimension(data, dimension)
    start, end = (_utc_naive(v) for v in extent)
    if start is not None and end is not None and end <= start:
        raise TemporalExtentEmpty("The temporal extent is empty: the second instant in time must be later "
                                  "than the first.")
    times = _times(data, dim).values
    keep = ~np.isnat(times)
    if start is not None:
        keep &= times >= start
    if end is not None:
        keep &= times < end  # the end is excluded
    return data.isel({dim: np.flatnonzero(keep)})  # selection only: the data type stays


# --- aggregate_temporal_period -----------------------------------------------------------------

_SEASONS = {12: "djf", 3: "mam", 6: "jja", 9: "son"}


def _period_start(period: str, t: pd.Timestamp) -> pd.Timestamp:
    if period == "hour":
        return t.floor("h")
    day = t.normalize()
    if period == "day":
        return day
    if period == "week":
        return day - pd.Timedelta(days=day.weekday())
    if period == "dekad":
        return day.replace(day=min((day.day - 1) // 10, 2) * 10 + 1)
    if period == "month":
        return day.replace(day=1)
    if period == "season":  # Dec-Feb, Mar-May, Jun-Aug, Sep-Nov
        months_back = t.month % 3
        return (day.replace(day=1) - pd.DateOffset(months=months_back)) if months_back else day.replace(day=1)
    if period == "tropical-season":  # Nov-Apr, May-Oct
        months_back = (t.month - 11) % 12 if t.month >= 11 or t.month < 5 else t.month - 5
        return day.replace(day=1) - pd.DateOffset(months=months_back)
    if period == "year":
        return pd.Timestamp(t.year, 1, 1)
    if period == "decade":
        return pd.Timestamp(t.year // 10 * 10, 1, 1)
    if period == "decade-ad":
        return pd.Timestamp((t.year - 1) // 10 * 10 + 1, 1, 1)
    raise ValueError(f"aggregate_temporal_period: unknown period {period!r}")


def _next_start(period: str, start: pd.Timestamp) -> pd.Timestamp:
    steps = {"hour": pd.Timedelta(hours=1), "day": pd.Timedelta(days=1), "week": pd.Timedelta(days=7),
             "month": pd.DateOffset(months=1), "season": pd.DateOffset(months=3),
             "tropical-season": pd.DateOffset(months=6), "year": pd.DateOffset(years=1),
             "decade": pd.DateOffset(years=10), "decade-ad": pd.DateOffset(years=10)}
    if period == "dekad":
        return start + pd.Timedelta(days=10) if start.day < 21 else start.replace(day=1) + pd.DateOffset(months=1)
    return start + steps[period]


def _period_label(period: str, start: pd.Timestamp) -> str:
    if period == "hour":
        return start.strftime("%Y-%m-%d-%H")
    if period == "day":
        return start.strftime("%Y-%j")
    if period == "week":
        year, week, _ = start.isocalendar()
        return f"{year}-{week:02d}"
    if period == "dekad":
        return f"{start.year}-{(start.month - 1) * 3 + (start.day - 1) // 10 + 1:02d}"
    if period == "month":
        return start.strftime("%Y-%m")
    if period == "season":
        return f"{start.year}-{_SEASONS[start.month]}"
    if period == "tropical-season":
        return f"{start.year}-{'ndjfma' if start.month == 11 else 'mjjaso'}"
    return str(start.year)  # year, decade, decade-ad: the first year


def period_labels(period: str, times: pd.DatetimeIndex) -> tuple[list[str], list[str]]:
    """(the label of each time, all labels from the first to the last time's period, in order)."""
    starts = [_period_start(period, t) for t in times]
    complete = []
    if starts:
        current, last = min(starts), max(starts)
        while current <= last:
            complete.append(_period_label(period, current))
            current = _next_start(period, current)
    return [_period_label(period, s) for s in starts], complete


def aggregate_temporal_period(data: xr.DataArray, reducer: Callable, period: str, dimension: str | None = None,
                              context: Any = None) -> xr.DataArray:
    dim = _temporal_dimension(data, dimension)
    valid = ~np.isnat(_times(data, dim).values)
    data = data.isel({dim: np.flatnonzero(valid)})
    keys, complete = period_labels(period, _times(data, dim))
    group = "__period__"
    groups = xr.DataArray(keys, dims=[dim], coords={dim: data[dim].values}, name=group)
    reduced = data.groupby(groups).reduce(reducer, dim=dim, keep_attrs=True, positional_parameters={"data": 0},
                                          named_parameters={"context": context})
    reduced = reduced.reindex({group: complete})  # empty periods: no-data
    order = [group if d == dim else d for d in data.dims]
    return reduced.transpose(*order).rename({group: dim})


# --- filter_spatial ----------------------------------------------------------------------------

def _geometries(geojson: Any, crs: Any) -> Any:
    """GeoJSON (geometry, Feature or FeatureCollection; WGS 84 unless it names a CRS) in ``crs``."""
    import geopandas as gpd
    import shapely.geometry

    if not isinstance(geojson, dict) or "type" not in geojson:
        raise errors.ProcessParameterInvalid(process="filter_spatial", parameter="geometries",
                                             reason="this backend takes a GeoJSON object here (a vector cube is "
                                                    "not supported)")
    if geojson["type"] == "FeatureCollection":
        shapes = [shapely.geometry.shape(f["geometry"]) for f in geojson.get("features", []) if f.get("geometry")]
    elif geojson["type"] == "Feature":
        shapes = [shapely.geometry.shape(geojson["geometry"])]
    else:
        shapes = [shapely.geometry.shape(geojson)]
    source_crs = ((geojson.get("crs") or {}).get("properties") or {}).get("name", "EPSG:4326")
    return gpd.GeoSeries(shapes, crs=source_crs).to_crs(crs)


def filter_spatial(data: xr.DataArray, geometries: Any) -> xr.DataArray:
    """The cube cropped to the geometries' bounding box, pixels (by centre) outside them no-data."""
    import rasterio.features

    x_dim, y_dim = data.openeo.x_dim, data.openeo.y_dim
    x_dim, y_dim = (x_dim[0] if isinstance(x_dim, list) else x_dim), (y_dim[0] if isinstance(y_dim, list) else y_dim)
    shapes = _geometries(geometries, data.rio.crs or "EPSG:4326")
    west, south, east, north = shapes.total_bounds
    xs, ys = data[x_dim].values, data[y_dim].values
    res_x = abs(float(xs[1] - xs[0])) if len(xs) > 1 else 0.0
    res_y = abs(float(ys[1] - ys[0])) if len(ys) > 1 else 0.0
    cropped = data.isel({x_dim: np.flatnonzero((xs + res_x / 2 > west) & (xs - res_x / 2 < east)),
                         y_dim: np.flatnonzero((ys + res_y / 2 > south) & (ys - res_y / 2 < north))})
    if cropped.sizes[x_dim] == 0 or cropped.sizes[y_dim] == 0:
        return cropped
    outside = rasterio.features.geometry_mask(list(shapes), out_shape=(cropped.sizes[y_dim], cropped.sizes[x_dim]),
                                              transform=cropped.rio.transform())
    inside = xr.DataArray(~outside, dims=(y_dim, x_dim), coords={y_dim: cropped[y_dim], x_dim: cropped[x_dim]})
    return cropped.where(inside)


FIXES: dict[str, Callable] = {"filter_labels": filter_labels, "filter_temporal": filter_temporal,
                              "aggregate_temporal_period": aggregate_temporal_period,
                              "filter_spatial": filter_spatial}
