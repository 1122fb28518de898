"""The chunk codec of UDFs, on both sides of the sandbox: values as .npy (numbers only, never pickles),
dimensions and labels as JSON. Standard library and numpy only: worker.py runs it inside the jail."""

from __future__ import annotations

import json
import os

import numpy as np


def encode_chunk(array, directory: str, stem: str) -> None:
    """An xarray.DataArray as ``stem.npy`` (numeric values, no pickle) and ``stem.json`` (dims, labels)."""
    values = np.asarray(array.values)
    if values.dtype.kind not in "biuf":
        raise TypeError(f"a UDF cube must hold numbers, not {values.dtype} values")
    coords = {}
    for dim in array.dims:
        if dim not in array.coords:
            continue
        labels = np.asarray(array.coords[dim].values)
        if labels.dtype.kind == "M":
            coords[dim] = {"kind": "datetime", "values": np.datetime_as_string(labels, unit="ns").tolist()}
        else:
            coords[dim] = {"kind": "values", "values": [_json_label(v) for v in labels.tolist()]}
    with open(os.path.join(directory, stem + ".npy"), "wb") as file:
        np.save(file, np.ascontiguousarray(values), allow_pickle=False)
    with open(os.path.join(directory, stem + ".json"), "w") as file:
        json.dump({"dims": list(array.dims), "coords": coords, "name": _json_label(array.name)}, file)


def decode_chunk(directory: str, stem: str):
    import xarray as xr

    with open(os.path.join(directory, stem + ".json")) as file:
        header = json.load(file)
    # Mapped, not read: no copy of the values (the spool is memory-backed where /dev/shm exists);
    # copy-on-write, so a UDF may change its input in place.
    values = np.load(os.path.join(directory, stem + ".npy"), allow_pickle=False, mmap_mode="c")
    coords = {}
    for dim, coord in header["coords"].items():
        labels = coord["values"]
        coords[dim] = np.array(labels, dtype="datetime64[ns]") if coord["kind"] == "datetime" else np.array(labels)
    return xr.DataArray(values, dims=header["dims"], coords=coords, name=header.get("name"))


def encode_geometries(dim: str, geometries, crs: str | None, properties: dict | None = None) -> dict:
    """A vector cube's geometries (shapely) as JSON: WKB in hex, the CRS as WKT (or None), and the
    properties of each (name → one value per geometry; numbers, strings, None)."""
    import shapely

    columns = {str(name): [_json_label(v) for v in np.asarray(values).tolist()]
               for name, values in (properties or {}).items()}
    return {"dim": dim, "wkb": [shapely.to_wkb(g, hex=True) for g in geometries], "crs": crs,
            "properties": columns}


def decode_geometries(document: dict) -> list:
    import shapely

    return list(shapely.from_wkb(document["wkb"])) if document["wkb"] else []


def _json_label(value):
    return value if value is None or isinstance(value, (str, int, float, bool)) else str(value)
