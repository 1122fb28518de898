"""load_url: a file from an http(s) URL as a data cube (openEO proposal; openeo-processes-dask lacks it).

The URL is read only through backend.processing.fetching (``fetch_allowed_hosts`` allow-list, public
addresses, ``fetch_max_bytes``, ``fetch_timeout``, same-host redirects); anything it refuses is a
ProcessParameterInvalid of parameter ``url`` naming the host and the setting.

Input formats (``format`` is case-insensitive; GET /file_formats lists them under ``input``):

* ``GeoJSON``: an RFC 7946 document, returned as load_geojson returns it (a vector cube, feature
  properties kept as coordinates);
* ``JSON``: the same — a JSON document that is GeoJSON (a vector cube); other JSON is FormatUnsuitable.

Every other format (GTiff, netCDF, CSV, Parquet, ...) is refused with FormatUnsupported naming these;
raster files are read with load_stac from a STAC Item or Collection instead. No reading options exist
for either format: a non-empty ``options`` is refused. Content that is not what ``format`` says (not
UTF-8, not JSON, not GeoJSON) is FormatUnsuitable.
"""

from __future__ import annotations

import json
from typing import Any

import xarray as xr

from apicore import errors
from backend.processing.fetching import Fetcher, policy_for
from backend.processing.processes.load_geojson import geojson_cube
from backend.processing.processes.values import plain

PROCESS = "load_url"

INPUT_FORMATS: dict[str, dict] = {
    "GeoJSON": {
        "title": "GeoJSON",
        "description": "An RFC 7946 GeoJSON document (FeatureCollection, Feature or geometry; "
                       "GeometryCollection is not supported), read into a vector cube with one geometry per "
                       "feature; feature properties are kept. Read by load_url from allowed hosts.",
        "gis_data_types": ["vector"],
        "parameters": {},
    },
    "JSON": {
        "title": "JSON (GeoJSON content)",
        "description": "A JSON document holding GeoJSON, read like the GeoJSON format into a vector cube; "
                       "JSON that is not GeoJSON is refused (FormatUnsuitable).",
        "gis_data_types": ["vector"],
        "parameters": {},
    },
}


class FormatUnsuitable(errors.OpenEOError):
    """load_url's own exception (processes proposal): the file does not fit the requested format."""

    code = "FormatUnsuitable"
    status = 400
    template = "Data can't be loaded with the requested input format: {reason}"


def input_formats() -> dict[str, dict]:
    """The ``input`` part of GET /file_formats."""
    return {name: dict(spec) for name, spec in INPUT_FORMATS.items()}


def resolve_input_format(name: Any) -> str:
    """The canonical name of an input format (case-insensitive), or FormatUnsupported naming the choices."""
    lookup = {key.lower(): key for key in INPUT_FORMATS}
    if isinstance(name, str) and name.strip().lower() in lookup:
        return lookup[name.strip().lower()]
    supported = ", ".join(INPUT_FORMATS)
    raise errors.FormatUnsupported(
        f"Format '{name}' is not supported by {PROCESS}. Supported input formats: {supported} (both read into a "
        f"vector cube). Raster files are not read by URL: publish them as a STAC Item or Collection and use "
        f"load_stac.", format=name, supported=supported)


def check_input_options(name: str, options: Any) -> None:
    """Options of an input format; neither GeoJSON nor JSON has any."""
    options = plain(options)
    if options is None:
        return
    if not isinstance(options, dict):
        raise errors.ProcessParameterInvalid(process=PROCESS, parameter="options",
                                             reason=f"expected an object, got {type(options).__name__}")
    if options:
        raise errors.ProcessParameterInvalid(process=PROCESS, parameter="options", reason=(
            f"format {name} has no reading options (got {sorted(options)}); leave options empty"))


def load_url(url: str, format: str, options: Any = None, *, run_context: Any = None) -> xr.DataArray:
    name = resolve_input_format(plain(format))  # before any network access
    check_input_options(name, options)
    content = Fetcher(policy_for(run_context), PROCESS, "url").fetch(url)
    return _read_geojson(content, url, name)


def _read_geojson(content: bytes, url: str, name: str) -> xr.DataArray:
    try:
        document = json.loads(content.decode("utf-8-sig"))
    except UnicodeDecodeError:
        raise FormatUnsuitable(reason=f"{url} is not UTF-8 text, so not {name}") from None
    except ValueError as exc:
        raise FormatUnsuitable(reason=f"{url} is not valid JSON ({exc}), so not {name}") from None
    kind = document.get("type") if isinstance(document, dict) else None
    if kind not in ("FeatureCollection", "Feature", "Point", "MultiPoint", "LineString", "MultiLineString",
                    "Polygon", "MultiPolygon", "GeometryCollection"):
        raise FormatUnsuitable(reason=f"{url} is JSON but not GeoJSON (its top-level 'type' is {kind!r}); only "
                                      "GeoJSON documents are read into a data cube")
    return geojson_cube(document, process=PROCESS, parameter="url")
