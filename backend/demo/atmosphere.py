"""Per-date effects on the surface: clouds, their shadows, cirrus, swath edge, small gain.

Also derives the scene classification (SCL) the way a user would expect from L2A: clouds are
bright in every band and flagged 8/9, shadows are dark and flagged 3, cirrus 10, no data 0.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass

import numpy as np

from backend.demo import layout as L
from backend.demo.noise import fractal_noise, rng
from backend.demo.phenology import ndvi
from backend.demo.spec import ORBIT_EDGE_DATES, SUN_AZIMUTH, SUN_ELEVATION, TileSpec

# Band order B02, B03, B04, B08, B11 (reflectance x 10000).
_CLOUD = np.array([6200, 6000, 5900, 6300, 4300], np.float32)
_CIRRUS = np.array([2200, 2000, 1900, 1800, 900], np.float32)  # x cirrus opacity
_CLOUD_HEIGHT_M = 1500.0

SCL_SHADOW, SCL_VEGETATION, SCL_NOT_VEGETATED, SCL_WATER = 3, 4, 5, 6
SCL_CLOUD_MEDIUM, SCL_CLOUD_HIGH, SCL_CIRRUS = 8, 9, 10


@dataclass
class Weather:
    cloud: np.ndarray  # float32 opacity 0..1 of thick cloud
    cirrus: np.ndarray  # float32 opacity 0..0.35 of thin cirrus
    shadow: np.ndarray  # float32 0..1 shadow strength on the ground
    nodata: np.ndarray  # bool, outside the swath
    cloud_texture: np.ndarray  # float32 ~N(0, 0.6), brightness variation inside clouds
    gain: float  # per-date radiometric factor (~ +-2 %): no two dates are exactly alike


def _blobs(specs, rows, cols, noise, edge, gain, cap) -> np.ndarray:
    """Max over round blobs (row, col, radius) with noisy edges; each is evaluated in a window
    (2 radii: wide enough that noise never reaches its border, so no straight cut edges)."""
    out = np.zeros((len(rows), len(cols)), np.float32)
    for rc, cc, radius in specs:
        r0, r1 = np.searchsorted(rows, [rc - 2 * radius, rc + 2 * radius])
        c0, c1 = np.searchsorted(cols, [cc - 2 * radius, cc + 2 * radius])
        if r0 >= r1 or c0 >= c1:
            continue
        d = np.hypot((rows[r0:r1, None] - rc), (cols[None, c0:c1] - cc)) / radius
        a = np.clip(gain * ((1.0 - d) + edge * noise[r0:r1, c0:c1]), 0.0, cap)
        np.maximum(out[r0:r1, c0:c1], a, out=out[r0:r1, c0:c1])
    return out


def shadow_offset_px(date: dt.date) -> tuple[int, int]:
    """(dr, dc) >= 0 such that the shadow at pixel p is cast by the cloud at p + (dr, dc).

    The sun stands SSE, so shadows fall NNW of their cloud, further when the sun is low.
    """
    length = _CLOUD_HEIGHT_M / math.tan(math.radians(SUN_ELEVATION[date.month])) / 10.0
    az = math.radians(SUN_AZIMUTH)
    return round(-length * math.cos(az)), round(length * math.sin(az))


def make_weather(tile: TileSpec, lay: L.TileLayout, date: dt.date,
                 rows: np.ndarray, cols: np.ndarray) -> Weather:
    key = (tile.seed, 10, date.toordinal())
    noise = fractal_noise(key, rows, cols, cell=20.0)
    cloud = _blobs(lay.clouds.get(date, ()), rows, cols, noise, edge=0.35, gain=2.5, cap=1.0)
    cirrus = _blobs(lay.cirrus.get(date, ()), rows, cols, noise, edge=0.25, gain=0.35, cap=0.35)

    dr, dc = shadow_offset_px(date)
    shifted = np.zeros_like(cloud)
    shifted[: cloud.shape[0] - dr, : cloud.shape[1] - dc] = cloud[dr:, dc:]
    shadow = np.clip((shifted - 0.2) / 0.4, 0.0, 1.0)

    nodata = np.zeros(cloud.shape, bool)
    if date in ORBIT_EDGE_DATES:
        a, b, side = lay.orbit_edge
        edge = a + b * rows[:, None]
        nodata = (cols[None, :] < edge) if side == "west" else (cols[None, :] > edge)
    gain = 1.0 + 0.02 * float(rng(tile.seed, 11, date.toordinal()).uniform(-1.0, 1.0))
    return Weather(cloud, cirrus, shadow, nodata, noise, gain)


def apply_weather(surface: np.ndarray, w: Weather) -> np.ndarray:
    """Top-of-canopy (5, H, W) -> observed reflectance, float32, computed IN PLACE.

    No per-pixel sensor noise on purpose: it is invisible at realistic levels (a few DN) yet
    would double the size of the compressed COGs.
    """
    ground = np.float32(w.gain) * (1.0 - 0.65 * w.shadow)  # shadows darken the ground...
    ground *= 1.0 - w.cloud  # ...which a cloud hides in proportion to its opacity
    cloud = w.cloud * (1.0 + 0.1 * w.cloud_texture)
    for b in range(surface.shape[0]):  # band by band: keeps peak memory low
        surface[b] *= ground
        surface[b] += _CLOUD[b] * cloud + _CIRRUS[b] * w.cirrus
    return surface


def scene_classification(surface: np.ndarray, is_water: np.ndarray, w: Weather) -> np.ndarray:
    """SCL at 10 m from the clear-sky surface and the weather (priority: later rules win)."""
    scl = np.where(ndvi(surface) > 0.4, SCL_VEGETATION, SCL_NOT_VEGETATED).astype(np.uint8)
    scl[is_water] = SCL_WATER
    scl[(w.shadow > 0.5) & (w.cloud < 0.25)] = SCL_SHADOW
    scl[w.cirrus > 0.08] = SCL_CIRRUS
    scl[w.cloud > 0.25] = SCL_CLOUD_MEDIUM
    scl[w.cloud > 0.65] = SCL_CLOUD_HIGH
    scl[w.nodata] = 0
    return scl
