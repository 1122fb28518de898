"""run_udf on a vector cube (an xvec cube: a dimension of shapely geometries with their CRS).

The whole cube is one chunk (vector cubes are values per geometry: small). The UDF gets the values with
the geometry dimension labelled 0..n-1 and, for ``apply_vectorcube(geometries, cube, context)`` of the
openeo package's contract, a GeoDataFrame of the geometries with that index; what it returns (geometries
and values, possibly fewer or other geometries) is the new vector cube. An ``apply_datacube`` UDF keeps
the geometries: its result must keep their dimension and count.
"""

from __future__ import annotations

import numpy as np
import xarray as xr

from apicore import errors
from backend.processing.udf.chunk_codec import decode_geometries, encode_geometries
from backend.processing.udf.sandbox import run_udf_vector


def run_on_vector_cube(data: xr.DataArray, dim: str, call) -> xr.DataArray:
    import xvec  # noqa: F401  (registers .xvec)

    data = data.compute()
    index = data.xindexes.get(dim)
    crs = getattr(index, "crs", None)
    geometries = list(data[dim].values)
    dtype = data.dtype if data.dtype.kind == "f" else np.dtype("float64")
    coords = {name: coord.values for name, coord in data.coords.items() if coord.dims == (name,) and name != dim}
    bare = xr.DataArray(data.values.astype(dtype), dims=data.dims, coords={**coords, dim: np.arange(len(geometries))},
                        name=data.name)
    properties = {name: coord.values for name, coord in data.coords.items() if coord.dims == (dim,) and name != dim}
    crs_text = crs.to_wkt() if crs is not None else None
    sent = encode_geometries(dim, geometries, crs_text, properties)
    result, returned = run_udf_vector(call.code, call.context, bare, sent, call.limits)
    if returned is not None:  # apply_vectorcube: its geometries and their properties
        geometries, crs = decode_geometries(returned), returned.get("crs")
        properties = {name: np.array(values) for name, values in returned.get("properties", {}).items()}
    if dim not in result.dims or result.sizes[dim] != len(geometries):
        if returned is None:
            raise errors.UdfFailed(f"The UDF returned a cube of ({_sizes(result)}) for a vector cube of "
                                   f"{len(geometries)} geometries: keep the dimension '{dim}' and its size, or "
                                   "return new geometries with apply_vectorcube(geometries, cube, context).")
        raise errors.UdfFailed(f"apply_vectorcube returned {len(geometries)} geometries and a cube of "
                               f"({_sizes(result)}): the cube's dimension '{dim}' needs one label per geometry.")
    labels = np.empty(len(geometries), dtype=object)
    labels[:] = geometries
    result = result.assign_coords({dim: labels, **{name: (dim, values) for name, values in properties.items()}})
    return result.xvec.set_geom_indexes(dim, crs=crs)


def _sizes(cube: xr.DataArray) -> str:
    return ", ".join(f"{name}: {size}" for name, size in cube.sizes.items())
