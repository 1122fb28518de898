"""The graphs the federation's end-to-end tests send (over the demo area, June 2022), and reading a result."""

from __future__ import annotations

import numpy as np
import openeo
import rasterio

from backend.demo import DEMO_DEM_COLLECTION, DEMO_S1_COLLECTION, DEMO_S2_COLLECTION

AREA = {"west": 679720, "south": 5151080, "east": 680680, "north": 5151920, "crs": 32632}
JUNE = ["2022-06-01", "2022-07-01"]


def ndvi(connection: openeo.Connection):
    """Mean NDVI of June on S2 (backend A only)."""
    cube = connection.load_collection(DEMO_S2_COLLECTION, spatial_extent=AREA, temporal_extent=JUNE,
                                      bands=["B04", "B08"])
    return cube.ndvi(nir="B08", red="B04").reduce_dimension("t", "mean")


def s1_mean(connection: openeo.Connection):
    """Mean VV of June on S1 (backend B only)."""
    cube = connection.load_collection(DEMO_S1_COLLECTION, spatial_extent=AREA, temporal_extent=JUNE, bands=["VV"])
    return cube.reduce_dimension("t", "mean")


def dem(connection: openeo.Connection):
    """The DEM (on both backends)."""
    return connection.load_collection(DEMO_DEM_COLLECTION, spatial_extent=AREA)


def read(path) -> np.ndarray:
    with rasterio.open(path) as raster:
        return raster.read(masked=False).astype("float64")
