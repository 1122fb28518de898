"""Render one S2 acquisition of one tile into final band arrays (10 m and 20 m)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np

from backend.demo import atmosphere as A
from backend.demo import layout as L
from backend.demo.landscape import WATER, Landscape
from backend.demo.noise import pixel_centres
from backend.demo.phenology import surface_reflectance
from backend.demo.spec import REFLECTANCE_BANDS, TileSpec

_CLOUDY_SCL = (A.SCL_CLOUD_MEDIUM, A.SCL_CLOUD_HIGH, A.SCL_CIRRUS)


@dataclass
class S2Scene:
    bands: dict[str, np.ndarray]  # band name -> 2-D array at the band's native resolution
    cloud_cover: float  # percent of valid SCL pixels flagged 8, 9 or 10
    has_nodata: bool


def _block_mean(a: np.ndarray) -> np.ndarray:
    """10 m -> 20 m by averaging 2 x 2 blocks, like the sensor integrating a larger footprint."""
    h, w = a.shape
    return a.reshape(h // 2, 2, w // 2, 2).mean(axis=(1, 3))


def _to_dn(refl: np.ndarray, nodata: np.ndarray) -> np.ndarray:
    # Valid pixels never become 0, which is the nodata value.
    dn = np.clip(np.rint(refl), 1, 65535).astype(np.uint16)
    dn[nodata] = 0
    return dn


def render_s2(tile: TileSpec, lay: L.TileLayout, ls: Landscape, date: dt.date) -> S2Scene:
    rows, cols = pixel_centres(tile.height), pixel_centres(tile.width)
    surface = surface_reflectance(ls, date)
    weather = A.make_weather(tile, lay, date, rows, cols)
    scl10 = A.scene_classification(surface, ls.cover == WATER, weather)  # before: in-place next
    observed = A.apply_weather(surface, weather)

    # 20 m products sample the 10 m masks at the upper-left sub-pixel, so SCL and B11 agree.
    nodata20 = weather.nodata[::2, ::2]
    bands: dict[str, np.ndarray] = {}
    for i, spec in enumerate(REFLECTANCE_BANDS):
        if spec.resolution == 10:
            bands[spec.name] = _to_dn(observed[i], weather.nodata)
        else:
            bands[spec.name] = _to_dn(_block_mean(observed[i]), nodata20)
    scl = scl10[::2, ::2].copy()
    scl[nodata20] = 0
    bands["SCL"] = scl

    valid = np.count_nonzero(scl)
    cloudy = np.count_nonzero(np.isin(scl, _CLOUDY_SCL))
    cloud_cover = round(100.0 * cloudy / valid, 2) if valid else 100.0
    return S2Scene(bands, cloud_cover, bool(weather.nodata.any()))
