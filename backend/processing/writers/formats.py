"""The output-format registry: names and aliases, option schemas and checking, dispatch by value kind.

``write_result(value, format, options, target_dir)`` is the whole public entry point of save_result's
output side; ``output_formats()`` is the matching GET /file_formats ``output`` document.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from apicore import errors

from . import json_csv, png, raster_netcdf, raster_tiff, raster_zarr, vector
from .common import PROCESS, WrittenResult, classify, unsuitable

Writer = Callable[[Any, dict, Path], WrittenResult]
WITH_METADATA = frozenset({raster_tiff.write_gtiff, raster_netcdf.write_netcdf})  # take ``metadata=``


@dataclass(frozen=True)
class OutputFormat:
    name: str
    title: str
    description: str
    gis_data_types: list[str]
    parameters: dict[str, dict]
    writers: dict[str, Writer]  # value kind ('raster', 'vector', 'array', 'plain') → writer
    aliases: tuple[str, ...] = field(default=())


CSV_PARAMETERS = {
    "include_geometry": {"type": "boolean", "default": False,
                         "description": "Vector cubes: add a 'geometry' column with the WKT of each geometry "
                                        "(in the cube's CRS)."},
}
NETCDF_VECTOR = {"compression_level": raster_netcdf.PARAMETERS["compression_level"]}

FORMATS: dict[str, OutputFormat] = {f.name: f for f in [
    OutputFormat(
        "GTiff", "GeoTIFF (Cloud-Optimized)",
        "One Cloud-Optimized GeoTIFF (tiled, internal overviews), float32 with NaN as nodata, band "
        "descriptions = band labels. A cube with one time step is written without it; with several, all "
        "time steps go into ONE file, bands ordered by time then band, described '<date>/<band>' (per-band "
        "tags 't' and 'bands').",
        ["raster"], raster_tiff.PARAMETERS, {"raster": raster_tiff.write_gtiff},
        ("geotiff", "tif", "tiff", "cog")),
    OutputFormat(
        "netCDF", "netCDF 4",
        "CF conventions. Raster cubes: one variable per band (name = band label), dims (t, y, x), CF "
        "time, a 'crs' grid-mapping variable, zlib compression, NaN as _FillValue. Vector cubes: dims "
        "(geometry, t), one variable per band, geometries as WKT in the 'geometry' coordinate, 'crs' "
        "grid mapping.",
        ["raster", "vector"], raster_netcdf.PARAMETERS,
        {"raster": raster_netcdf.write_netcdf, "array": raster_netcdf.write_netcdf,
         "vector": vector.write_netcdf},
        ("nc", "netcdf4", "nc4")),
    OutputFormat(
        "Zarr", "Zarr (zipped store)",
        "The netCDF layout (one variable per band, CF time, 'crs' grid mapping) as a Zarr store (format 2 "
        "with consolidated metadata by default) inside ONE zip file, result.zarr.zip, stored uncompressed "
        "so it can be opened in place: xarray.open_zarr(zarr.storage.ZipStore(path, mode='r')).",
        ["raster"], raster_zarr.PARAMETERS, {"raster": raster_zarr.write_zarr, "array": raster_zarr.write_zarr},
    ),
    OutputFormat(
        "JSON", "JSON / GeoJSON",
        "Vector cubes as a GeoJSON FeatureCollection (WGS84, one property per '<date>/<band>'); "
        "non-cube results (numbers, strings, arrays, objects) as plain JSON; small raster cubes (up to "
        f"{json_csv.MAX_TEXT_VALUES} values) as {{type: 'openeo:datacube', dims, coords, crs, data}} with "
        "nested lists and null for no-data.",
        ["raster", "vector", "table", "other"], {},
        {"raster": json_csv.write_json, "array": json_csv.write_json, "plain": json_csv.write_json,
         "vector": vector.write_geojson},
        ("geojson",)),
    OutputFormat(
        "CSV", "Comma-separated values",
        "Vector cubes: one row per geometry and time step (feature_index, date, one column per band, "
        "optionally the WKT geometry). Time series and small raster cubes (up to "
        f"{json_csv.MAX_TEXT_VALUES} values): one row per label combination of the non-band dimensions, "
        "one column per band. No-data is an empty cell.",
        ["vector", "table", "raster"], CSV_PARAMETERS,
        {"vector": vector.write_csv, "array": json_csv.write_csv, "raster": json_csv.write_csv}),
    OutputFormat(
        "PNG", "PNG quicklook",
        "8-bit quicklook without georeferencing: 1 band → grayscale, 3 bands → RGB (band order), plus an "
        "alpha band (transparent where any band is no-data). Linear stretch scale_min → 0, scale_max → 255 "
        "for all bands (default: 2nd and 98th percentile of the valid values). The cube must have at most "
        "one time step.",
        ["raster"], png.PARAMETERS, {"raster": png.write_png}),
]}

_NAMES = {name.lower(): name for name in FORMATS}
_NAMES.update({alias: f.name for f in FORMATS.values() for alias in f.aliases})


def output_formats() -> dict:
    """The GET /file_formats ``output`` object for exactly the formats written here."""
    return {name: {"title": f.title, "description": f.description, "gis_data_types": list(f.gis_data_types),
                   "parameters": copy.deepcopy(f.parameters)}
            for name, f in FORMATS.items()}


def resolve_format(name: Any) -> OutputFormat:
    key = name.strip().lower() if isinstance(name, str) else None
    if key not in _NAMES:
        raise errors.FormatUnsupported(format=name, supported=", ".join(FORMATS))
    return FORMATS[_NAMES[key]]


def check_options(fmt: OutputFormat, options: dict | None) -> dict:
    """Options with defaults filled in; an unknown option or a bad value → ProcessParameterInvalid."""
    if options is None:
        options = {}
    if not isinstance(options, dict):
        raise _invalid(fmt, f"options must be an object, got {type(options).__name__}")
    unknown = sorted(set(options) - set(fmt.parameters))
    if unknown:
        known = ", ".join(sorted(fmt.parameters)) or "none"
        raise _invalid(fmt, f"unknown option(s) {', '.join(map(repr, unknown))} for format {fmt.name}; "
                            f"its options are: {known}")
    checked = {name: copy.deepcopy(schema.get("default")) for name, schema in fmt.parameters.items()}
    for name, given in options.items():
        checked[name] = _check_value(fmt, name, fmt.parameters[name], given)
    return checked


def _check_value(fmt: OutputFormat, name: str, schema: dict, given: Any) -> Any:
    types = schema["type"] if isinstance(schema["type"], list) else [schema["type"]]
    if given is None:  # null = the default (clients send null for "not set")
        return copy.deepcopy(schema.get("default"))
    value = given
    if isinstance(given, str) and "string" in types and "enum" in schema:
        value = given.strip().lower()
    ok = (("string" in types and isinstance(value, str))
          or ("boolean" in types and isinstance(value, bool))
          or ("integer" in types and _is_integer(value))
          or ("number" in types and isinstance(value, (int, float)) and not isinstance(value, bool)
              and math.isfinite(value)))
    if ok and "integer" in types and _is_integer(value):
        value = int(value)
    if ok and "enum" in schema and value not in schema["enum"]:
        ok = False
    if ok and "minimum" in schema and value < schema["minimum"]:
        ok = False
    if ok and "maximum" in schema and value > schema["maximum"]:
        ok = False
    if not ok:
        raise _invalid(fmt, f"option '{name}' of format {fmt.name} got {given!r}; expected {_describe(schema)}")
    return value


def _is_integer(value: Any) -> bool:
    return (isinstance(value, int) and not isinstance(value, bool)) or (
        isinstance(value, float) and value.is_integer())


def _describe(schema: dict) -> str:
    if "enum" in schema:
        return "one of " + ", ".join(map(str, schema["enum"]))
    text = " or ".join(t for t in (schema["type"] if isinstance(schema["type"], list) else [schema["type"]]))
    if "minimum" in schema or "maximum" in schema:
        text += f" in [{schema.get('minimum', '-inf')}, {schema.get('maximum', 'inf')}]"
    return text


def _invalid(fmt: OutputFormat, reason: str) -> errors.OpenEOError:
    return errors.ProcessParameterInvalid(process=PROCESS, parameter="options", reason=reason)


def write_result(value: Any, format: str, options: dict | None, target_dir: Path,
                 metadata: dict[str, str] | None = None) -> WrittenResult:
    """Write ``value`` (raster cube, vector cube, time series or plain value) in ``format`` into
    ``target_dir`` and describe the file. ``metadata``: text fields for the file where the format has room
    (GeoTIFF tags, netCDF global attributes of raster cubes; provenance.py). Raises FormatUnsupported,
    ProcessParameterInvalid (options), FormatUnsuitable (data vs format) or DataCubeEmpty."""
    fmt = resolve_format(format)
    checked = check_options(fmt, options)
    kind = classify(value)
    writer = fmt.writers.get(kind)
    if writer is None:
        suitable = [f.name for f in FORMATS.values() if kind in f.writers]
        what = {"raster": "a raster cube", "vector": "a vector cube", "array": "a cube without x/y",
                "plain": f"a non-cube value ({type(value).__name__})"}[kind]
        raise unsuitable(fmt.name, f"{what} cannot be written as {fmt.name}; use {', '.join(suitable)}")
    if metadata and writer in WITH_METADATA:
        return writer(value, checked, Path(target_dir), metadata=metadata)
    return writer(value, checked, Path(target_dir))
