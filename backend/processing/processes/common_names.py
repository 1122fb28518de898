"""Bands named by their common name (``nir``, ``red`` ...): ndvi, filter_bands, and merge_cubes keeping them.

Loaded cubes carry each band's common name in the coordinate ``common_name`` along ``bands`` ("" for a
band without one; backend/processing/loading/bands.py). The openEO processes resolve a band name as a
band label first, then as a common name. openeo-processes-dask gets this wrong:

* ``ndvi``: with no ``common_name`` coordinate the defaults fail with xarray's "'common_name' is not a
  valid dimension or coordinate"; two bands sharing a common name give a cube with a bands dimension
  instead of an error; ``BandExists`` is checked against coordinate names, not band labels; its errors
  do not say which bands there are.
* ``filter_bands`` selects by label only: a common name fails with a bare ``Exception`` (a 500).
* ``merge_cubes`` of cubes with different bands turns each band into a Dataset variable, where the
  ``common_name`` coordinate no longer fits ("conflicting sizes for dimension 'bands'").

The same resolution (:class:`BandTable`) serves ``/validation`` (validation/band_checks.py), so a dry
run reports exactly what the run would.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np
import xarray as xr

from apicore import errors
from backend.processing.loading.bands import COMMON_NAME

NDVI_NAME = "NDVI"  # name of ndvi's result (a cube without bands): the netCDF variable, the GTiff band


class BandProcessError(errors.OpenEOError):
    """An exception the process specs name (NirBandAmbiguous ...); the message says what to change."""

    status = 400
    template = "{reason}"


def _exception(code: str) -> type[BandProcessError]:
    return type(code, (BandProcessError,), {"code": code, "__module__": __name__})


NirBandAmbiguous = _exception("NirBandAmbiguous")
RedBandAmbiguous = _exception("RedBandAmbiguous")
BandExists = _exception("BandExists")
DimensionAmbiguous = _exception("DimensionAmbiguous")
DimensionMissing = _exception("DimensionMissing")
BandFilterParameterMissing = _exception("BandFilterParameterMissing")


@dataclass(frozen=True)
class BandTable:
    """Band labels and their common names ("" for none), in the cube's order."""

    labels: tuple[str, ...]
    commons: tuple[str, ...]

    @classmethod
    def of(cls, cube: xr.DataArray, dim: str) -> BandTable:
        labels = tuple(str(v) for v in cube[dim].values) if dim in cube.coords else \
            tuple(str(i) for i in range(cube.sizes[dim]))
        coord = cube.coords.get(COMMON_NAME)
        commons = tuple(str(v) for v in coord.values) if coord is not None and coord.dims == (dim,) else \
            ("",) * len(labels)
        return cls(labels, commons)

    def matches(self, name: Any) -> list[int]:
        """Positions of the band labelled ``name``, else of every band with that common name."""
        if not isinstance(name, str) or not name:
            return []
        if name in self.labels:
            return [self.labels.index(name)]
        return [i for i, common in enumerate(self.commons) if common == name]

    def describe(self) -> str:
        """``B02 (blue), B03 (green), SCL`` — for messages."""
        return ", ".join(f"{label} ({common})" if common else label for label, common in zip(self.labels, self.commons))


def band_dimension(data: Any, process: str, missing: type[BandProcessError]) -> str:
    """The cube's dimension of type bands (openeo-processes-dask guesses types from names: ``bands``)."""
    import openeo_processes_dask.process_implementations  # noqa: F401  (registers the .openeo accessor)

    if not isinstance(data, xr.DataArray):
        raise missing(reason=f"{process}: the data must be a raster data cube with a dimension of type bands")
    dims = list(data.openeo.band_dims)
    if len(dims) != 1:
        raise missing(reason=f"{process}: the data cube has {'no' if not dims else len(dims)} dimension(s) of type "
                             f"bands (dimensions: {list(data.dims)}); it needs exactly one, e.g. 'bands'")
    return dims[0]


# --- ndvi ------------------------------------------------------------------------------------------


def ndvi_band(table: BandTable, name: Any, parameter: str) -> int:
    """The position of ndvi's ``nir`` or ``red`` band; the spec's exception when it is not exactly one."""
    error = NirBandAmbiguous if parameter == "nir" else RedBandAmbiguous
    found = table.matches(name)
    if len(found) == 1:
        return found[0]
    if not found:
        reason = (f"ndvi: no band is named or has the common name {name!r} (bands: {table.describe()}); "
                  f"set `{parameter}` to the name of the {'near-infrared' if parameter == 'nir' else 'red'} band")
    else:
        reason = (f"ndvi: {len(found)} bands have the common name {name!r} "
                  f"({', '.join(table.labels[i] for i in found)}); set `{parameter}` to one of them by name")
    raise error(reason=reason)


def ndvi_problems(table: BandTable, nir: Any, red: Any, target_band: Any) -> list[BandProcessError]:
    """Every reason ndvi would fail on these bands (the process raises the first)."""
    problems = []
    for name, parameter in ((nir, "nir"), (red, "red")):
        try:
            ndvi_band(table, name, parameter)
        except BandProcessError as exc:
            problems.append(exc)
    if target_band is not None and target_band in table.labels:
        problems.append(BandExists(reason=f"ndvi: a band named {target_band!r} exists already; choose another "
                                          f"target_band (bands: {table.describe()})"))
    return problems


def ndvi(data: xr.DataArray, nir: str = "nir", red: str = "red", target_band: str | None = None) -> xr.DataArray:
    dim = band_dimension(data, "ndvi", DimensionAmbiguous)
    table = BandTable.of(data, dim)
    problems = ndvi_problems(table, nir, red, target_band)
    if problems:
        raise problems[0]
    nir_at, red_at = ndvi_band(table, nir, "nir"), ndvi_band(table, red, "red")
    nir_band = data.isel({dim: nir_at}, drop=True)
    red_band = data.isel({dim: red_at}, drop=True)
    # on the arrays: both bands share every coordinate, and xarray's alignment of each of the three
    # operations cost ~1 ms apiece of a small request
    nir_values, red_values = nir_band.data, red_band.data
    result = nir_band.copy(deep=False, data=(nir_values - red_values) / (nir_values + red_values))
    result.attrs = dict(data.attrs)
    if target_band is None:
        return result.rename(NDVI_NAME)
    added = result.expand_dims({dim: [target_band]}).transpose(*data.dims)
    if COMMON_NAME in data.coords:
        added = added.assign_coords({COMMON_NAME: (dim, [""])})
    return xr.concat([data, added.astype(data.dtype, copy=False)], dim=dim, coords="minimal", compat="override",
                     join="override", combine_attrs="override")


# --- filter_bands ----------------------------------------------------------------------------------


def filter_positions(table: BandTable, bands: Any) -> list[int]:
    """Positions of the requested bands in the requested order (each band once; all bands of a common name,
    in the cube's order), or the error the process raises."""
    if not bands:
        raise BandFilterParameterMissing(reason="filter_bands: give the bands to keep in `bands` (band names or "
                                                f"common names; bands: {table.describe()})")
    positions: list[int] = []
    for name in bands:
        found = table.matches(name)
        if not found:
            raise errors.ProcessParameterInvalid(
                process="filter_bands", parameter="bands",
                reason=f"{name!r} is neither the name nor the common name of a band; bands: {table.describe()}")
        positions.extend(i for i in found if i not in positions)
    return positions


def filter_bands(data: xr.DataArray, bands: Sequence[str] | None = None) -> xr.DataArray:
    dim = band_dimension(data, "filter_bands", DimensionMissing)
    return data.isel({dim: filter_positions(BandTable.of(data, dim), bands)})


# --- merge_cubes -----------------------------------------------------------------------------------


def _common_names_by_label(cube: Any) -> tuple[str | None, dict[str, str]]:
    coord = cube.coords.get(COMMON_NAME) if isinstance(cube, xr.DataArray) else None
    if coord is None or coord.ndim != 1 or coord.dims[0] not in cube.coords:
        return None, {}
    dim = coord.dims[0]
    return dim, {str(label): str(common) for label, common in zip(cube[dim].values, coord.values)}


def merge_cubes(cube1: Any, cube2: Any, overlap_resolver: Callable | None = None, context: Any = None) -> Any:
    """openeo-processes-dask's merge_cubes without the ``common_name`` coordinate in its way; the merged
    bands get their common names back (cube1's where a label is in both)."""
    from openeo_processes_dask.process_implementations import merge_cubes as library_merge

    dim2, names2 = _common_names_by_label(cube2)
    dim1, names1 = _common_names_by_label(cube1)
    stripped = [cube.drop_vars(COMMON_NAME) if dim is not None else cube
                for cube, dim in ((cube1, dim1), (cube2, dim2))]
    merged = library_merge(*stripped, overlap_resolver=overlap_resolver, context=context)
    dim = dim1 or dim2
    if dim is None or not isinstance(merged, xr.DataArray) or dim not in merged.dims or dim not in merged.coords:
        return merged
    names = {**names2, **names1}
    commons = np.array([names.get(str(label), "") for label in merged[dim].values], dtype=str)
    return merged.assign_coords({COMMON_NAME: (dim, commons)})


PROCESSES: dict[str, Callable] = {"ndvi": ndvi, "filter_bands": filter_bands, "merge_cubes": merge_cubes}
