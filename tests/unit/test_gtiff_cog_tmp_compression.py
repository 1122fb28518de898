"""write_gtiff's COG_TMP_COMPRESSION=PACKBITS shortcut changes nothing in the result, byte for byte.

The COG step of write_gtiff is spied on: the temporary tiled GeoTIFF it copies is kept, and the same
copy is made again with GDAL's default temporary overview compression. The two COGs must be the same
bytes. ``COG_TMP_COMPRESSION=NONE`` would fail here (GDAL 3.10: the 513 x 2100 nearest-neighbour
overviews then differ), which is why raster_tiff.py does not use it.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import rasterio
import rasterio.shutil
import rioxarray  # noqa: F401  (registers .rio)
import xarray as xr

from backend.processing.writers import raster_tiff, write_result
from backend.processing.writers.raster_tiff import GDAL_CACHE_MB

RES, X0, Y0 = 10.0, 500000.0, 5000000.0


def cube(height: int, width: int, bands: int) -> xr.DataArray:
    """Smooth float32 values with noise and a block of NaN (no-data), as overviews meet them in practice."""
    rng = np.random.default_rng(42)
    y, x = np.mgrid[0:height, 0:width]
    data = np.stack([np.sin(y / 37 + b) * np.cos(x / 23) * 1000 + rng.normal(0, 5, (height, width))
                     for b in range(bands)]).astype("float32")
    data[:, height // 5:height // 5 + 40, width // 10:width // 10 + 60] = np.nan
    values = xr.DataArray(data, dims=("bands", "y", "x"), coords={
        "bands": [f"B{b}" for b in range(bands)],
        "y": Y0 - RES * (np.arange(height) + 0.5), "x": X0 + RES * (np.arange(width) + 0.5)})
    return values.rio.write_crs("EPSG:32632").chunk({"x": 512, "y": 512})


CASES = pytest.mark.parametrize("height, width, bands, options", [
    (513, 2100, 1, {"overview_resampling": "nearest", "blocksize": 256}),  # overviews do not halve evenly
    (513, 2100, 1, {"overview_resampling": "average", "compression": "zstd"}),
    (2100, 513, 2, {"overview_resampling": "nearest", "compression": "lzw", "blocksize": 512}),
    (1000, 1000, 3, {"overview_resampling": "cubic", "blocksize": 256}),
    (300, 700, 1, {"overview_resampling": "mode", "compression": "none", "blocksize": 256}),
    (700, 300, 1, {"overview_resampling": "bilinear", "predictor": False, "blocksize": 256}),
], ids=["513x2100-nearest", "513x2100-average-zstd", "2100x513x2-nearest-lzw", "1000x1000x3-cubic",
        "300x700-mode-uncompressed", "700x300-bilinear-no-predictor"])


@CASES
def test_packbits_temporary_overviews_give_the_same_file(tmp_path, monkeypatch, height, width, bands, options):
    monkeypatch.delenv("COG_TMP_COMPRESSION", raising=False)  # the reference must be GDAL's default
    monkeypatch.setattr(raster_tiff, "IN_MEMORY_BYTES", 0)  # the streaming path: through a temporary file
    real_copy = rasterio.shutil.copy
    copies: list[tuple[Path, dict]] = []

    def spy(source, dest, **kwargs):
        kept = tmp_path / f"kept-{len(copies)}.tif"
        shutil.copyfile(source, kept)  # write_gtiff deletes its temporary file afterwards
        copies.append((kept, kwargs))
        return real_copy(source, dest, **kwargs)

    monkeypatch.setattr(rasterio.shutil, "copy", spy)
    out = tmp_path / "out"
    out.mkdir()
    result = write_result(cube(height, width, bands), "GTiff", options, out)
    monkeypatch.setattr(rasterio.shutil, "copy", real_copy)

    assert len(copies) == 1 and copies[0][1]["driver"] == "COG"
    kept, kwargs = copies[0]
    reference = tmp_path / "reference.tif"
    with rasterio.Env(GDAL_CACHEMAX=GDAL_CACHE_MB * 2**20):  # as write_gtiff, minus COG_TMP_COMPRESSION
        real_copy(kept, reference, **kwargs)

    with rasterio.open(result.path) as written:
        assert (written.height, written.width, written.count) == (height, width, bands)
        assert len(written.overviews(1)) >= 1  # the temporary overview file was used at all
    assert result.path.read_bytes() == reference.read_bytes()


@CASES
def test_small_cubes_written_from_memory_give_the_same_file(tmp_path, monkeypatch, height, width, bands, options):
    """Cubes up to IN_MEMORY_BYTES are computed into memory and written as the COG directly (no temporary
    file): the same bytes as the streaming path."""
    written = {}
    for name, limit in (("streamed", 0), ("in_memory", 2**30)):
        monkeypatch.setattr(raster_tiff, "IN_MEMORY_BYTES", limit)
        out = tmp_path / name
        out.mkdir()
        written[name] = write_result(cube(height, width, bands), "GTiff", options, out,
                                     metadata={"processing:software": "test"}).path.read_bytes()
    assert written["in_memory"] == written["streamed"]
