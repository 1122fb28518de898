"""load_stac of our own multi-date GeoTIFF results: the ``<date>/<band>`` bands back into ``t`` x ``bands``.

Our GeoTIFF writer puts a cube with several dates into one file whose bands are ``<date>/<band>``
(t-major; writers/raster_tiff.py), and a batch job's results document names them so in ``eo:bands``.
Read as they are, they would give one date with N x M bands. When every band of what load_stac found is
named that way, the cube is rebuilt instead: the bands are read as stored (band by band), then stacked
along ``t`` (labels = the dates) with the plain band names along ``bands``. So a job's result read back
with load_stac is the cube the job saved, which the federation's split graphs rely on (a part run as a
batch job on one backend, read by the rest of the graph on another).

``temporal_extent`` selects dates (left-closed, like load_collection), ``bands`` plain band names.
"""

from __future__ import annotations

import re
from typing import Any, Callable

import pandas as pd
import xarray as xr

from backend.processing.loading.bands import all_bands
from backend.processing.loading.extents import normalize_interval
from backend.processing.loading.from_items import ItemsRef, load_items_cube
from apicore import errors

PROCESS = "load_stac"
DATED_BAND = re.compile(r"^(\d{4}-\d{2}-\d{2}(?:T\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?Z?)?)/(.+)$")


def dated_layout(metadata: dict) -> tuple[list[str], list[str]] | None:
    """(dates, band names) when every band is ``<date>/<band>`` and they form a full date x band grid."""
    names = [band.name for band in all_bands(metadata)]
    matches = [DATED_BAND.match(name) for name in names]
    if not names or not all(matches):
        return None
    dates = list(dict.fromkeys(m[1] for m in matches))
    bands = list(dict.fromkeys(m[2] for m in matches))
    if set(names) != {f"{d}/{b}" for d in dates for b in bands}:
        return None  # not our writer's layout: read the bands as they are named
    return dates, bands


def load_dated_cube(ref: ItemsRef, metadata: dict, layout: tuple[list[str], list[str]], spatial_extent: Any,
                    temporal_extent: Any, bands: Any, properties: dict | None, *,
                    check_href: Callable[[str], Any], max_values: int | None = None, on_items=None,
                    **reads: Any) -> xr.DataArray:
    """Lazy (t, bands, y, x) cube of a ``<date>/<band>`` file: the stored bands, restacked."""
    dates, names = layout
    wanted = _requested(bands, names)
    interval = normalize_interval(temporal_extent)
    stamps = {d: pd.Timestamp(d).tz_localize("UTC") if pd.Timestamp(d).tzinfo is None else pd.Timestamp(d)
              for d in dates}
    chosen = [d for d in dates if interval is None or interval.contains(stamps[d].to_pydatetime())]
    if not chosen:
        raise errors.ProcessParameterInvalid(
            process=PROCESS, parameter="temporal_extent",
            reason=f"the data has dates {', '.join(dates)}, none of them in the requested interval")
    stored = load_items_cube(ref, metadata, spatial_extent, None, [f"{d}/{b}" for d in chosen for b in wanted],
                             properties, check_href=check_href, max_values=max_values, on_items=on_items,
                             **reads)
    flat = stored.isel(t=0, drop=True) if "t" in stored.dims else stored
    per_date = [flat.isel(bands=slice(i * len(wanted), (i + 1) * len(wanted))).assign_coords(bands=wanted)
                for i in range(len(chosen))]
    times = pd.DatetimeIndex([stamps[d].tz_convert("UTC").tz_localize(None) for d in chosen], name="t")
    cube = xr.concat(per_date, dim=times, coords="minimal", compat="override")
    return cube.transpose("t", "bands", "y", "x")


def _requested(bands: Any, names: list[str]) -> list[str]:
    if bands is None:
        return list(names)
    if not isinstance(bands, (list, tuple)) or not bands or not all(isinstance(b, str) for b in bands):
        raise errors.ProcessParameterInvalid(process=PROCESS, parameter="bands",
                                             reason="give a non-empty list of band names, or null for all bands")
    unknown = [b for b in bands if b not in names]
    if unknown or len(set(bands)) != len(bands):
        reason = (f"band {unknown[0]!r} does not exist" if unknown else "a band is named twice")
        raise errors.ProcessParameterInvalid(process=PROCESS, parameter="bands",
                                             reason=f"{reason}; available: {', '.join(names)}")
    return list(bands)
