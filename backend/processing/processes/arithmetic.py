"""Math processes: null in, null out; no integer wrap-around in band math; the constant `e`.

openeo-processes-dask computes ``x + y``, ``np.cos(x)``, ... directly, so a JSON ``null`` argument
raises ("unsupported operand type(s) for +: 'NoneType' and 'int'") where the spec answers ``null``;
and ``subtract``/``add``/``multiply``/``power``/``normalized_difference`` on integer arrays wrap
around (uint16 ``1 - 2`` is 65535: an NDVI of 4.63 where -0.0104 is right), so integer arrays are
computed as float64. ``e`` disappears from openeo-processes-dask without its ``ml`` extra (its
``except ImportError as e`` deletes the module attribute ``e``). ``power`` of plain numbers overflows
to ±inf (IEEE 754) instead of building unbounded Python integers.
"""

from __future__ import annotations

import functools
import math
from typing import Any, Callable

import numpy as np
from openeo_processes_dask.process_implementations import math as lib

from backend.processing.processes.math_overrides import divide as ieee_divide
from backend.processing.processes.values import no_wrap, null_in_null_out


def e() -> float:
    return math.e


def power(base: Any, p: Any) -> Any:
    """Plain numbers as IEEE 754 doubles, as the spec's numbers are (its tests include ±Infinity): a
    result beyond about 1.8e308 is +inf or -inf, where Python's ``10 ** 100000`` builds a 100,001-digit
    integer (no answer can carry it) and ``10 ** 10 ** 9`` would hold the worker for minutes.
    Integer powers that fit a double exactly stay integers (``power(3, 3)`` is 27)."""
    if _plain_number(base) and _plain_number(p):
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            result = float(np.power(np.float64(base), np.float64(p)))
        if isinstance(base, int) and isinstance(p, int) and p >= 0 and abs(result) < 2 ** 53:
            return base ** p
        return result
    return lib.power(no_wrap(base), no_wrap(p))


def _plain_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _without_wrap(function: Callable) -> Callable:
    """Integer array operands as float64 before ``function`` (all its arguments are numbers)."""

    @functools.wraps(function)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        return function(*(no_wrap(a) for a in args), **{k: no_wrap(v) for k, v in kwargs.items()})

    return wrapper


# process id: (function, parameters for which null makes the result null)
_NULL_IN_NULL_OUT: dict[str, tuple[Callable, tuple[str, ...]]] = {
    "absolute": (lib.absolute, ("x",)),
    "add": (_without_wrap(lib.add), ("x", "y")),
    "subtract": (_without_wrap(lib.subtract), ("x", "y")),
    "multiply": (_without_wrap(lib.multiply), ("x", "y")),
    "divide": (ieee_divide, ("x", "y")),
    "normalized_difference": (_without_wrap(lib.normalized_difference), ("x", "y")),
    "power": (power, ("base", "p")),
    "mod": (lib.mod, ("x", "y")),
    "sgn": (lib.sgn, ("x",)),
    "sqrt": (lib.sqrt, ("x",)),
    "exp": (lib.exp, ("p",)),
    "ln": (lib.ln, ("x",)),
    "log": (lib.log, ("x", "base")),
    "ceil": (lib.ceil, ("x",)),
    "floor": (lib.floor, ("x",)),
    "int": (lib._int, ("x",)),
    "round": (lib._round, ("x",)),
    "clip": (lib.clip, ("x",)),
    "linear_scale_range": (lib.linear_scale_range, ("x",)),
    "cos": (lib.cos, ("x",)),
    "sin": (lib.sin, ("x",)),
    "tan": (lib.tan, ("x",)),
    "cosh": (lib.cosh, ("x",)),
    "sinh": (lib.sinh, ("x",)),
    "tanh": (lib.tanh, ("x",)),
    "arccos": (lib.arccos, ("x",)),
    "arcsin": (lib.arcsin, ("x",)),
    "arctan": (lib.arctan, ("x",)),
    "arcosh": (lib.arcosh, ("x",)),
    "arsinh": (lib.arsinh, ("x",)),
    "artanh": (lib.artanh, ("x",)),
    "arctan2": (lib.arctan2, ("y", "x")),
}

FIXES: dict[str, Callable] = {
    process_id: null_in_null_out(function, *names) for process_id, (function, names) in _NULL_IN_NULL_OUT.items()
}
FIXES["e"] = e
