"""climatological_normal and anomaly (openEO "climatology" processes; openeo-processes-dask has neither).

Both stay lazy: they only select, group and subtract along the temporal dimension, so a Dask-backed
cube gives a Dask-backed result and no pixel is read here.

climatological_normal(data, period, climatology_period=[1981, 2010])
  The mean of all time steps that fall into each period label, skipping no-data. Labels, always all of
  them, in this order (a label without any time step is no-data):

  * ``day``: ``001`` … ``365`` — the day of a non-leap year, so 1 March is always ``060``; 29 February
    counts towards ``059`` (28 February), because the spec defines 365 labels.
  * ``month``: ``01`` … ``12``;  ``climatology-period``: one label ``climatology-period``.
  * ``season``: ``djf``, ``mam``, ``jja``, ``son``;  ``tropical-season``: ``ndjfma``, ``mjjaso``.
    A season that starts in the year before the period (DJF from December, NDJFMA from November) is
    used only when the cube has a time step in those months; otherwise January–February (April) of
    the first year are left out, too. The season that starts at the end of the last year never counts.

  The cube must reach into the first and the last year of the climatology period (the spec: it must
  span it); otherwise the error names the years the cube covers.

anomaly(data, normals, period)
  ``data`` minus the normal of each time step's period. ``data``'s temporal labels may be those of
  aggregate_temporal_period (``2020-07``, ``2020-djf``, ``2020-183``, ``2020-06-01-13`` …, see the
  spec) or plain dates; ``normals`` has one label per period (``07``, ``djf``, ``183`` …) or a single
  label for ``climatology-period`` / ``single-period``. Day labels of data (``YYYY-DDD``, day of that
  year) are matched in the non-leap calendar of climatological_normal. A data label without a normal
  is an error naming the missing normal; labels on the other dimensions must be the same in both.
"""

from __future__ import annotations

import re
from typing import Any, Callable

import numpy as np
import pandas as pd
import xarray as xr

from apicore import errors
from backend.processing.processes.cubes import _temporal_dimension, _times
from backend.processing.processes.values import plain

SEASON_OF_MONTH = {12: "djf", 1: "djf", 2: "djf", 3: "mam", 4: "mam", 5: "mam",
                   6: "jja", 7: "jja", 8: "jja", 9: "son", 10: "son", 11: "son"}
NORMAL_LABELS: dict[str, list[str]] = {
    "day": [f"{d:03d}" for d in range(1, 366)],
    "month": [f"{m:02d}" for m in range(1, 13)],
    "season": ["djf", "mam", "jja", "son"],
    "tropical-season": ["ndjfma", "mjjaso"],
    "climatology-period": ["climatology-period"],
}
ANOMALY_PERIODS = ("hour", "day", "week", "dekad", "month", "season", "tropical-season", "year", "decade",
                   "decade-ad", "climatology-period", "single-period")
SINGLE_PERIODS = ("climatology-period", "single-period")
# Months before the first year that a season starting there needs (December for DJF, November for NDJFMA),
# and the month where the first season starts within the first year otherwise.
SEASON_START = {"season": (12, 3), "tropical-season": (11, 5)}

# The label suffix of each period in data labels "YYYY-<suffix>" (aggregate_temporal_period's format).
_DATA_LABEL = {
    "hour": re.compile(r"^\d{4}-\d{2}-\d{2}-(\d{2})$"),
    "day": re.compile(r"^(\d{4})-(\d{3})$"),
    "week": re.compile(r"^\d{4}-(\d{2})$"),
    "dekad": re.compile(r"^\d{4}-(\d{2})$"),
    "month": re.compile(r"^\d{4}-(\d{2})$"),
    "season": re.compile(r"^\d{4}-(djf|mam|jja|son)$"),
    "tropical-season": re.compile(r"^\d{4}-(ndjfma|mjjaso)$"),
    "year": re.compile(r"^(\d{4})$"),
    "decade": re.compile(r"^(\d{3}0)$"),
    "decade-ad": re.compile(r"^(\d{3}1)$"),
}
_DATA_FORMAT = {"hour": "YYYY-MM-DD-HH", "day": "YYYY-DDD", "week": "YYYY-WW", "dekad": "YYYY-DD",
                "month": "YYYY-MM", "season": "YYYY-djf (mam, jja, son)", "tropical-season": "YYYY-ndjfma (mjjaso)",
                "year": "YYYY", "decade": "YYY0", "decade-ad": "YYY1"}


def _invalid(process: str, parameter: str, reason: str) -> errors.OpenEOError:
    return errors.ProcessParameterInvalid(process=process, parameter=parameter, reason=reason)


# --- period keys of timestamps ------------------------------------------------------------------


def _day_of_non_leap_year(times: pd.DatetimeIndex) -> np.ndarray:
    day = np.asarray(times.dayofyear)
    after_feb_28 = np.asarray(times.is_leap_year) & ((np.asarray(times.month) > 2) |
                                                     ((np.asarray(times.month) == 2) & (np.asarray(times.day) == 29)))
    return day - after_feb_28


def period_keys(period: str, times: pd.DatetimeIndex) -> list[str]:
    """The normal's label of each time step: ``07`` for July with period month, and so on."""
    month = np.asarray(times.month)
    if period == "hour":
        return [f"{h:02d}" for h in times.hour]
    if period == "day":
        return [f"{d:03d}" for d in _day_of_non_leap_year(times)]
    if period == "week":
        return [f"{w:02d}" for w in times.isocalendar().week]
    if period == "dekad":  # as aggregate_temporal_period: three per month, the third one to the month's end
        return [f"{(m - 1) * 3 + min((d - 1) // 10, 2) + 1:02d}" for m, d in zip(month, times.day)]
    if period == "month":
        return [f"{m:02d}" for m in month]
    if period == "season":
        return [SEASON_OF_MONTH[m] for m in month]
    if period == "tropical-season":
        return ["ndjfma" if m >= 11 or m <= 4 else "mjjaso" for m in month]
    if period == "year":
        return [f"{y:04d}" for y in times.year]
    if period == "decade":
        return [f"{y // 10 * 10:04d}" for y in times.year]
    if period == "decade-ad":
        return [f"{(y - 1) // 10 * 10 + 1:04d}" for y in times.year]
    return ["climatology-period"] * len(times)


# --- climatological_normal ----------------------------------------------------------------------


def _years(value: Any) -> tuple[int, int]:
    value = plain(value)
    if not isinstance(value, (list, tuple)) or len(value) != 2:
        raise _invalid("climatological_normal", "climatology_period",
                       f"expected two years [first, last], e.g. [1991, 2020]; got {value!r}")
    years = []
    for item in value:
        text = str(item).strip()
        if isinstance(item, bool) or not re.fullmatch(r"\d{1,4}(\.0*)?", text):
            raise _invalid("climatological_normal", "climatology_period",
                           f"{item!r} is not a year; give whole years, e.g. [1991, 2020]")
        years.append(int(float(text)))
    if years[0] >= years[1]:
        raise _invalid("climatological_normal", "climatology_period",
                       f"the first year ({years[0]}) must be before the last ({years[1]}); both are included")
    return years[0], years[1]


def _window(period: str, times: pd.DatetimeIndex, first: int, last: int) -> tuple[pd.Timestamp, pd.Timestamp]:
    """[start, end) of the time steps that count for the normals of ``period``."""
    if period not in SEASON_START:
        return pd.Timestamp(first, 1, 1), pd.Timestamp(last + 1, 1, 1)
    before, fallback = SEASON_START[period]
    early = pd.Timestamp(first - 1, before, 1)
    has_months_before = bool(((times >= early) & (times < pd.Timestamp(first, 1, 1))).any())
    start = early if has_months_before else pd.Timestamp(first, fallback, 1)
    return start, pd.Timestamp(last, before, 1)  # the season starting at the end of the last year: never


def _datetime_dimension(data: xr.DataArray, process: str, parameter: str) -> tuple[str, pd.DatetimeIndex]:
    try:
        dim = _temporal_dimension(data, None)
    except Exception as exc:  # noqa: BLE001  (DimensionNotAvailable / TooManyDimensions)
        raise _invalid(process, parameter, f"needs a cube with exactly one temporal dimension: {exc}") from None
    if not np.issubdtype(data[dim].dtype, np.datetime64):
        shown = ", ".join(map(str, data[dim].values[:3]))
        raise _invalid(process, parameter, f"the labels of temporal dimension '{dim}' must be dates, got {shown}; "
                                           "compute the normals from the original time steps, before "
                                           "aggregate_temporal_period")
    return dim, _times(data, dim)


def climatological_normal(data: xr.DataArray, period: str, climatology_period: Any = (1981, 2010)) -> xr.DataArray:
    process = "climatological_normal"
    if not isinstance(data, xr.DataArray):
        raise _invalid(process, "data", f"expected a data cube, got {type(data).__name__}")
    if period not in NORMAL_LABELS:
        raise _invalid(process, "period", f"unknown period {period!r}; choose one of {', '.join(NORMAL_LABELS)}")
    first, last = _years(climatology_period)
    dim, times = _datetime_dimension(data, process, "data")
    dated = times[~times.isna()]
    if len(dated) == 0 or dated.min().year > first or dated.max().year < last:
        covered = f"from {dated.min():%Y-%m-%d} to {dated.max():%Y-%m-%d}" if len(dated) else "no dates"
        raise _invalid(process, "climatology_period",
                       f"the data cube must cover the climatology period {first}-{last}, but its time steps "
                       f"range {covered}; load {first}-{last} or set climatology_period to years the cube covers"
                       + (f", e.g. [{dated.min().year}, {dated.max().year}]"
                          if len(dated) and dated.max().year > dated.min().year else ""))
    start, end = _window(period, dated, first, last)
    used = np.flatnonzero(np.asarray((times >= start) & (times < end)))  # NaT compares False
    if len(used) == 0:
        raise _invalid(process, "data", f"no time step of the cube falls into the {period} periods of "
                                        f"{first}-{last} (from {start:%Y-%m-%d} to before {end:%Y-%m-%d})")
    selected = data.isel({dim: used})
    keys = xr.DataArray(period_keys(period, times[used]), dims=[dim], coords={dim: selected[dim].values},
                        name="__normal__")
    normals = selected.groupby(keys).mean(dim=dim, skipna=True, keep_attrs=True)  # lazy on Dask arrays
    normals = normals.reindex({"__normal__": NORMAL_LABELS[period]})  # every label, no-data where empty
    order = ["__normal__" if d == dim else d for d in data.dims]
    return normals.transpose(*order).rename({"__normal__": dim})


# --- anomaly ------------------------------------------------------------------------------------


def _day_label(match: re.Match) -> str:
    year, day = int(match.group(1)), int(match.group(2))
    days_in_year = 366 if pd.Timestamp(year, 1, 1).is_leap_year else 365
    if not 1 <= day <= days_in_year:
        raise ValueError(f"{year} has no day {day}")
    return period_keys("day", pd.DatetimeIndex([pd.Timestamp(year, 1, 1) + pd.Timedelta(days=day - 1)]))[0]


def _data_keys(period: str, labels: np.ndarray) -> list[str]:
    if np.issubdtype(labels.dtype, np.datetime64):
        return period_keys(period, pd.DatetimeIndex(labels))
    if period in SINGLE_PERIODS:
        return ["climatology-period"] * len(labels)
    keys = []
    for label in labels:
        text = str(label)
        match = _DATA_LABEL[period].match(text)
        try:
            if match:
                keys.append(_day_label(match) if period == "day" else match.group(1))
            else:  # a date written as text: its period
                keys.append(period_keys(period, pd.DatetimeIndex([pd.Timestamp(text)]))[0])
        except ValueError:
            raise _invalid("anomaly", "data", f"temporal label {text!r} does not fit period '{period}': expected "
                                              f"{_DATA_FORMAT[period]} (as aggregate_temporal_period labels it) "
                                              "or a date") from None
    return keys


def _normal_positions(period: str, normals: xr.DataArray, dim: str) -> dict[str, int]:
    labels = normals[dim].values
    if period in SINGLE_PERIODS:
        if len(labels) != 1:
            raise _invalid("anomaly", "normals", f"period '{period}' needs normals with a single temporal label, "
                                                 f"got {len(labels)}")
        return {"climatology-period": 0}
    keys = period_keys(period, pd.DatetimeIndex(labels)) if np.issubdtype(labels.dtype, np.datetime64) \
        else [str(label) for label in labels]
    positions = {key: i for i, key in enumerate(keys)}
    if len(positions) != len(keys):
        raise _invalid("anomaly", "normals", f"the normals have several labels for the same {period}: {keys}")
    return positions


def anomaly(data: xr.DataArray, normals: xr.DataArray, period: str) -> xr.DataArray:
    for name, cube in (("data", data), ("normals", normals)):
        if not isinstance(cube, xr.DataArray):
            raise _invalid("anomaly", name, f"expected a data cube, got {type(cube).__name__}")
    if period not in ANOMALY_PERIODS:
        raise _invalid("anomaly", "period", f"unknown period {period!r}; choose one of {', '.join(ANOMALY_PERIODS)}")
    try:
        dim, normal_dim = _temporal_dimension(data, None), _temporal_dimension(normals, None)
    except Exception as exc:  # noqa: BLE001  (DimensionNotAvailable / TooManyDimensions)
        raise _invalid("anomaly", "data", f"data and normals need exactly one temporal dimension each: {exc}") from None
    extra = [d for d in normals.dims if d != normal_dim and d not in data.dims]
    if extra:
        raise _invalid("anomaly", "normals", f"the normals have dimensions {extra} that data lacks")
    positions = _normal_positions(period, normals, normal_dim)
    keys = _data_keys(period, data[dim].values)
    missing = sorted({k for k in keys if k not in positions})
    if missing:
        raise _invalid("anomaly", "normals", f"no normal for {period} label(s) {missing[:10]} that data needs; the "
                                             f"normals have {list(positions)[:12]}")
    matched = normals.isel({normal_dim: [positions[k] for k in keys]})  # one normal per data time step (lazy)
    matched = matched.drop_vars([c for c in matched.coords if normal_dim in matched[c].dims])
    matched = matched.rename({normal_dim: dim}) if normal_dim != dim else matched
    matched = matched.assign_coords({dim: data[dim].values})
    try:
        with xr.set_options(arithmetic_join="exact", keep_attrs=True):
            result = data - matched
    except ValueError as exc:
        raise _invalid("anomaly", "normals", f"the normals' labels differ from data's on a non-temporal dimension "
                                             f"({exc}); compute the normals from the same cube") from None
    return result.transpose(*data.dims)


PROCESSES: dict[str, Callable] = {"climatological_normal": climatological_normal, "anomaly": anomaly}
