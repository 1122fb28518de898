"""save_result's output side: write a processing result to a file (no web framework involved).

    from backend.processing.writers import write_result, output_formats
    written = write_result(cube, "GTiff", {"compression": "zstd"}, Path(tmp))
    written.path, written.media_type, written.filename

Formats (case-insensitive names, aliases in formats.FORMATS): GTiff, netCDF, Zarr, JSON, CSV, PNG.
Each module documents its layout and options; ``output_formats()`` is the GET /file_formats "output".
"""

from .common import DataCubeEmpty, FormatUnsuitable, WrittenResult, classify
from .formats import FORMATS, check_options, output_formats, resolve_format, write_result

__all__ = ["WrittenResult", "write_result", "output_formats", "resolve_format", "check_options", "FORMATS",
           "FormatUnsuitable", "DataCubeEmpty", "classify"]
