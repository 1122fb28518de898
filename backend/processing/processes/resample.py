"""resample_spatial: openeo-processes-dask's, refusing the `align` values it would ignore.

The current openEO spec added `align` (default ``upper-left``); the library takes it but never uses it
(odc-geo anchors the new grid at multiples of the resolution). The Python client always sends the
default, so the parameter stays in the spec and only other values are refused.
"""

from __future__ import annotations

from typing import Any, Callable

from apicore import errors

DEFAULT_ALIGN = "upper-left"


def resample_spatial(data: Any, resolution: Any = 0, projection: Any = None, method: str = "near",
                     align: str = DEFAULT_ALIGN) -> Any:
    from openeo_processes_dask.process_implementations.cubes.resample import resample_spatial as library

    if align not in (None, DEFAULT_ALIGN):
        raise errors.ProcessParameterInvalid(
            process="resample_spatial", parameter="align",
            reason=f"this back-end aligns only to '{DEFAULT_ALIGN}' (got {align!r}); leave it at its default")
    return library(data=data, projection=projection, resolution=resolution, method=method)


FIXES: dict[str, Callable] = {"resample_spatial": resample_spatial}
