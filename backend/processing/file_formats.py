"""Input and output file formats, as served by GET /file_formats."""

from __future__ import annotations

OUTPUT_FORMATS: dict[str, dict] = {
    "GTiff": {
        "title": "GeoTIFF (Cloud-Optimized)",
        "description": "One file per time step when the cube has a time dimension; bands as GeoTIFF bands.",
        "gis_data_types": ["raster"],
        "parameters": {
            "compression": {"type": "string", "enum": ["deflate", "lzw", "zstd", "none"], "default": "deflate",
                            "description": "Compression of the GeoTIFF."},
        },
    },
    "netCDF": {
        "title": "netCDF 4",
        "description": "CF-style netCDF with x, y, t and bands as variables; vector cubes as point/geometry data.",
        "gis_data_types": ["raster", "vector"],
        "parameters": {},
    },
    "Zarr": {
        "title": "Zarr (zipped store)",
        "description": "A Zarr v2 store in one ZIP file.",
        "gis_data_types": ["raster"],
        "parameters": {},
    },
    "JSON": {
        "title": "JSON",
        "description": "Vector cubes and time series as JSON; small raster cubes as nested arrays.",
        "gis_data_types": ["raster", "vector", "table"],
        "parameters": {},
    },
    "CSV": {
        "title": "Comma-separated values",
        "description": "Vector cubes and time series as a table: one row per geometry and time step.",
        "gis_data_types": ["vector", "table"],
        "parameters": {},
    },
    "PNG": {
        "title": "PNG quicklook",
        "description": "8-bit quicklook of one or three bands, linearly scaled.",
        "gis_data_types": ["raster"],
        "parameters": {
            "scale_min": {"type": "number", "description": "Value mapped to 0; default: 2nd percentile."},
            "scale_max": {"type": "number", "description": "Value mapped to 255; default: 98th percentile."},
        },
    },
}

INPUT_FORMATS: dict[str, dict] = {}


def file_formats() -> dict:
    return {"input": INPUT_FORMATS, "output": OUTPUT_FORMATS}
