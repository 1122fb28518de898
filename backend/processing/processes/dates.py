"""Date processes: date_shift, date_between, date_difference.

openeo-processes-dask has a module with these three but does not export it (they are missing from
its process list). These follow the spec: dates without time are midnight UTC, time-zone offsets
are kept (date_shift) or respected (comparisons, differences), leap seconds are accepted as input
and never returned, and a day beyond the end of the month after adding months or years becomes the
month's last day (2020-01-31 + 1 month = 2020-02-29).
"""

from __future__ import annotations

import calendar
import datetime as dt
import re
from typing import Any, Callable

from apicore import errors
from backend.processing.processes.values import plain

_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_TIME = re.compile(r"^\d{2}:\d{2}(:\d{2}(\.\d+)?)?([Zz]|[+-]\d{2}:?\d{2})?$")
_LEAP_SECOND = re.compile(r"([T ]\d{2}:\d{2}:)60")
UTC = dt.timezone.utc

# Seconds per unit, for the fixed-length units.
_SECONDS = {"millisecond": 0.001, "second": 1, "minute": 60, "hour": 3600, "day": 86400, "week": 604800}


class _Instant:
    """A parsed date or date-time string and how it was written."""

    def __init__(self, text: str):
        if not isinstance(text, str):
            raise errors.ProcessParameterInvalid(f"Expected a date or date-time string, got {text!r}.")
        self.text = text.strip()
        self.date_only = bool(_DATE.match(self.text))
        leap = _LEAP_SECOND.search(self.text)
        try:
            value = dt.datetime.fromisoformat(_LEAP_SECOND.sub(r"\g<1>59", self.text) if leap else self.text)
        except ValueError:
            raise errors.ProcessParameterInvalid(f"{text!r} is not a valid date or date-time: write it as RFC 3339, "
                                                 "e.g. 2020-06-01 or 2020-06-01T12:00:00Z.") from None
        if leap:
            value += dt.timedelta(seconds=1)  # 23:59:60 is the instant before the next day's 00:00:00
        self.naive = value.tzinfo is None
        self.value = value.replace(tzinfo=UTC) if self.naive else value
        self.zulu = self.text[-1:] in ("Z", "z")

    def format(self, value: dt.datetime) -> str:
        """``value`` written like the input: a date stays a date; the offset (or Z) is kept."""
        if self.date_only:
            return value.date().isoformat()
        text = value.replace(tzinfo=None).isoformat(timespec="milliseconds" if value.microsecond else "seconds")
        if self.naive:
            return text
        if self.zulu and value.utcoffset() == dt.timedelta(0):
            return text + "Z"
        return text + value.strftime("%z")[:3] + ":" + value.strftime("%z")[3:]


def _add_months(value: dt.datetime, months: int) -> dt.datetime:
    """Calendar months; a day beyond the target month's end becomes its last day (Jan 31 + 1 → Feb 28/29)."""
    index = value.year * 12 + (value.month - 1) + months
    year, month = divmod(index, 12)
    day = min(value.day, calendar.monthrange(year, month + 1)[1])
    return value.replace(year=year, month=month + 1, day=day)


def date_shift(date: str, value: int, unit: str) -> str:
    instant = _Instant(plain(date))
    value = int(plain(value))
    if unit in ("month", "year"):
        shifted = _add_months(instant.value, value * (12 if unit == "year" else 1))
    elif unit in _SECONDS:
        shifted = instant.value + dt.timedelta(seconds=value * _SECONDS[unit])
    else:
        raise ValueError(f"date_shift: unknown unit {unit!r}")
    return instant.format(shifted)


def _months_between(start: dt.datetime, end: dt.datetime) -> float:
    """Calendar months from start to end, with the fraction of the month in progress."""
    if end < start:
        return -_months_between(end, start)
    whole = (end.year - start.year) * 12 + (end.month - start.month)
    while whole > 0 and _add_months(start, whole) > end:
        whole -= 1
    anchor, following = _add_months(start, whole), _add_months(start, whole + 1)
    return whole + (end - anchor) / (following - anchor)


def date_difference(date1: str, date2: str, unit: str = "second") -> float:
    """date2 - date1 in ``unit`` (positive if date1 is earlier); leap seconds are ignored."""
    start, end = _Instant(plain(date1)).value, _Instant(plain(date2)).value
    if unit == "month":
        return _months_between(start, end)
    if unit == "year":
        return _months_between(start, end) / 12
    if unit not in _SECONDS:
        raise ValueError(f"date_difference: unknown unit {unit!r}")
    seconds = (end - start) / dt.timedelta(seconds=1)
    return seconds / _SECONDS[unit]


def _time_of_day(text: str) -> dt.time | None:
    return dt.time.fromisoformat(text.rstrip("Zz")) if isinstance(text, str) and _TIME.match(text) else None


def date_between(x: Any, min: Any, max: Any, exclude_max: bool = False) -> bool | None:
    x, min, max = plain(x), plain(min), plain(max)
    if x is None or min is None or max is None:
        return None
    times = [_time_of_day(v) for v in (x, min, max)]
    if all(t is not None for t in times):  # times of day (no date)
        value, lower, upper = times
    else:
        value, lower, upper = (_Instant(v).value for v in (x, min, max))
    if lower > upper:
        return False
    return lower <= value < upper if exclude_max else lower <= value <= upper


FIXES: dict[str, Callable] = {"date_shift": date_shift, "date_between": date_between,
                              "date_difference": date_difference}
