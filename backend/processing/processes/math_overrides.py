"""Math processes whose openeo-processes-dask version raises where the spec asks for a value."""

from __future__ import annotations

from typing import Any

import numpy as np


def divide(x: Any, y: Any) -> Any:
    """IEEE semantics as the spec allows: x/0 is ±inf, 0/0 is NaN (plain Python floats raise instead)."""
    if np.isscalar(x) and np.isscalar(y):
        with np.errstate(divide="ignore", invalid="ignore"):
            return float(np.float64(x) / np.float64(y)) if x is not None and y is not None else None
    with np.errstate(divide="ignore", invalid="ignore"):
        return x / y
