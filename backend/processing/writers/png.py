"""PNG: an 8-bit quicklook of a raster cube (no georeferencing).

- 1 band → grayscale + alpha, 3 bands → RGB + alpha in band order (first band red); other band counts
  are refused (select bands with filter_bands first). The cube must have no ``t`` dimension, or one
  with a single label.
- Linear stretch, one range for all bands (colour balance is kept):
  ``value8 = round(clip((v - scale_min) / (scale_max - scale_min), 0, 1) * 255)``.
  ``scale_min``/``scale_max`` default to the 2nd/98th percentile of the valid values of all bands
  (estimated from at most ~1 million values on a regular pixel grid when the image is larger).
  If the range is empty (constant image) every valid pixel becomes 0.
- Alpha is 255 where all bands are valid, 0 where any band is NaN (those pixels are 0 in every colour
  band).
- Written with GDAL's PNG driver (Pillow is not installed), zlib level ``zlevel`` (default 3), no
  .aux.xml sidecar. The image is computed in memory (~6 bytes per pixel on top of the cube's values),
  so images above MAX_PIXELS pixels are refused.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import rasterio

from apicore import errors

from .common import PROCESS, WrittenResult, drop_single_time, raster_cube, target, unsuitable

MEDIA_TYPE = "image/png"
FILENAME = "result.png"
MAX_PIXELS = 100_000_000
SAMPLE = 1_000_000
DEFAULT_PERCENTILES = (2.0, 98.0)

PARAMETERS = {
    "scale_min": {"type": ["number", "null"], "default": None,
                  "description": "Value mapped to 0 (darkest); null: the 2nd percentile of the valid values."},
    "scale_max": {"type": ["number", "null"], "default": None,
                  "description": "Value mapped to 255 (brightest); null: the 98th percentile of the valid values."},
    "zlevel": {"type": "integer", "minimum": 1, "maximum": 9, "default": 3,
               "description": "zlib (deflate) level of the PNG: 3 is ~4x faster than libpng's usual 6 for "
                              "about the same size on image data."},
}


def scale_range(data: np.ndarray, valid: np.ndarray, scale_min, scale_max) -> tuple[float, float]:
    """(min, max) of the stretch: the options, or percentiles of (a regular-grid sample of) the valid values."""
    if scale_min is None or scale_max is None:
        step = max(1, int(np.ceil(np.sqrt(valid.size * data.shape[0] / SAMPLE))))
        values = data[:, ::step, ::step][:, valid[::step, ::step]].astype(np.float64)
        low, high = np.percentile(values, DEFAULT_PERCENTILES) if values.size else (0.0, 1.0)
        scale_min = float(low) if scale_min is None else scale_min
        scale_max = float(high) if scale_max is None else scale_max
    return float(scale_min), float(scale_max)


def to_uint8(data: np.ndarray, valid: np.ndarray, low: float, high: float, rows: int = 512) -> np.ndarray:
    """Scaled bytes, computed in float64 blocks of rows (bounded temporaries); 0 where not valid."""
    out = np.zeros(data.shape, dtype=np.uint8)
    span = high - low
    if span <= 0:
        return out
    for start in range(0, data.shape[1], rows):
        block = data[:, start:start + rows].astype(np.float64)
        block = np.rint(np.clip((block - low) / span, 0.0, 1.0) * 255.0)
        block[:, ~valid[start:start + rows]] = 0
        out[:, start:start + rows] = block
    return out


def write_png(value, options: dict, target_dir: Path) -> WrittenResult:
    cube = drop_single_time(raster_cube(value, "PNG"))
    if "t" in cube.dims:
        raise unsuitable("PNG", f"the cube has {cube.sizes['t']} time steps; a PNG shows one "
                                "(filter_temporal or reduce the t dimension first)")
    count = cube.sizes.get("bands", 1)
    if count not in (1, 3):
        raise unsuitable("PNG", f"the cube has {count} bands; a PNG quicklook takes 1 (grayscale) or "
                                "3 (RGB) bands: select them with filter_bands")
    height, width = cube.sizes["y"], cube.sizes["x"]
    if height * width > MAX_PIXELS:
        raise unsuitable("PNG", f"{width}x{height} pixels is above the quicklook limit of {MAX_PIXELS} "
                                "pixels: use GTiff")
    low, high = options.get("scale_min"), options.get("scale_max")
    if low is not None and high is not None and high <= low:
        raise errors.ProcessParameterInvalid(process=PROCESS, parameter="options",
                                             reason=f"PNG scale_max ({high}) must be greater than scale_min ({low})")
    data = np.asarray(cube.values).reshape(count, height, width)
    if not np.issubdtype(data.dtype, np.floating):
        data = data.astype(np.float32)
    valid = np.ones((height, width), dtype=bool)
    for band in data:
        valid &= np.isfinite(band)
    low, high = scale_range(data, valid, low, high)
    image = to_uint8(data, valid, low, high)
    alpha = valid.view(np.uint8) * np.uint8(255)  # (np.where(valid, 255, 0) would be int64: 8 bytes/pixel)

    path = target(target_dir, FILENAME)
    with rasterio.Env(GDAL_PAM_ENABLED="NO"):
        with rasterio.open(path, "w", driver="PNG", width=width, height=height, count=count + 1,
                           dtype="uint8", ZLEVEL=options["zlevel"]) as dst:
            dst.write(image, indexes=list(range(1, count + 1)))
            dst.write(alpha, indexes=count + 1)
    return WrittenResult(path=path, media_type=MEDIA_TYPE, filename=FILENAME)
