"""inspect: log a message and a summary of the data — into the job's log for batch jobs — and pass the
data on unchanged. The summary never computes a lazy cube (dimensions, labels, dtype only)."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import xarray as xr

MAX_LABELS = 10
MAX_ITEMS = 100


def inspect(data: Any, message: str = "", code: str = "User", level: str = "info", *, run_context) -> Any:
    run_context.log(level.lower(), message, code=code, data=summary(data))
    return data


def summary(data: Any) -> Any:
    if isinstance(data, xr.DataArray):
        return {"type": "datacube", "dimensions": {str(d): int(n) for d, n in data.sizes.items()},
                "dtype": str(data.dtype), "labels": {str(d): _labels(data[d].values) for d in data.dims
                                                     if d in data.coords and d not in ("x", "y")}}
    if isinstance(data, np.ndarray):
        return summary(data.tolist()) if data.size <= MAX_ITEMS else {"type": "array", "shape": list(data.shape)}
    if isinstance(data, (list, tuple)):
        return [summary(item) for item in data[:MAX_ITEMS]] + (["..."] if len(data) > MAX_ITEMS else [])
    if isinstance(data, dict):
        return {str(k): summary(v) for k, v in list(data.items())[:MAX_ITEMS]}
    if isinstance(data, np.generic):
        return data.item()
    try:
        json.dumps(data)
        return data
    except (TypeError, ValueError):
        return repr(data)[:200]


def _labels(values: np.ndarray) -> list:
    shown = [str(v)[:32] for v in values[:MAX_LABELS]]
    return shown + [f"... ({len(values)} in all)"] if len(values) > MAX_LABELS else shown
