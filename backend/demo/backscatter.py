"""Sentinel-1 GRD-like backscatter (sigma0 VV and VH, linear power) of a landscape on a date.

On the 20 m grid (the land-cover map sampled at 20 m): fields and tracks follow a water-cloud
model (the canopy's volume echo grows with the green cover of phenology.py and attenuates the echo
of the soil below, which rises with soil moisture); forest, roofs, streets and the quarry have
fixed class values; water is dark unless the wind roughens it. Then the terrain (local incidence
angle from terrain.py's surface), residual speckle and the swath edge are applied. So crops change
with their calendar (maize brightens in VH through July, wheat drops after its harvest), bare soil
brightens after rain, and slopes facing the radar are brighter.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import math
from dataclasses import dataclass

import numpy as np

from backend.demo import landscape as LS
from backend.demo import layout as L
from backend.demo.noise import fractal_noise, pixel_centres, rng
from backend.demo.phenology import green_cover
from backend.demo.spec import S1_ENL, S1_LOOK_AZIMUTH, S1_NODATA, S1_RESOLUTION, TileSpec
from backend.demo.terrain import surface_heights

# (VV, VH) in dB for classes without a vegetation model.
_CLASS_DB = {LS.FOREST: (-7.5, -13.0), LS.ROOF: (0.0, -9.0), LS.STREET: (-11.0, -19.5),
             LS.BARE: (-9.5, -18.0)}
# Water-cloud model per crop code (index 0: grassy farm tracks): volume backscatter of a full
# canopy in VV and VH (linear) and the canopy's extinction. Wheat's upright stems attenuate VV.
_WCM = np.array([
    (0.09, 0.022, 0.30),  # track
    (0.05, 0.020, 0.90),  # winter wheat
    (0.16, 0.040, 0.35),  # maize
    (0.14, 0.035, 0.35),  # sunflower
    (0.09, 0.022, 0.30),  # meadow
    (0.08, 0.018, 0.30),  # fallow
], np.float32).T
_SOIL_DRY_DB, _SOIL_WET_DB = -17.0, -9.0  # VV of bare soil; VH is _SOIL_CROSS_DB lower
_SOIL_CROSS_DB = -9.0
KEPT_BITS = 6  # float32 mantissa bits kept (values within 0.8 % = 0.03 dB), far finer than the speckle
_DEG_PER_10M = 0.068 / 100  # incidence angle grows ~0.068 deg per km away from the radar


def _to_linear(db: np.ndarray | float) -> np.ndarray:
    return np.power(np.float32(10.0), np.asarray(db, np.float32) / np.float32(10.0))


@dataclass(frozen=True)
class Weather:
    wetness: float  # mean soil moisture 0..1 (rain in the days before)
    wind: float  # 0 calm .. 1 strong, roughens the water


def weather(date: dt.date) -> Weather:
    """Regional weather of an S1 date (the same for every tile)."""
    g = rng(40, date.toordinal())
    return Weather(wetness=float(g.uniform(0.1, 0.8)), wind=float(g.uniform(0.0, 1.0)) ** 2)


@dataclass(frozen=True)
class RadarGround:
    """What does not change between S1 dates, on the 20 m grid."""

    cover: LS.Landscape  # the land-cover map sampled at 20 m (upper-left 10 m pixel of each)
    terrain: np.ndarray  # float32 sigma0 factor of the local incidence angle (terrain_factor)
    nodata: np.ndarray | None  # bool, outside the radar swath


def radar_ground(tile: TileSpec, lay: L.TileLayout, ls: LS.Landscape) -> RadarGround:
    coarse = LS.Landscape(**{f.name: np.ascontiguousarray(getattr(ls, f.name)[::2, ::2])
                             for f in dataclasses.fields(ls)})
    return RadarGround(coarse, terrain_factor(tile, lay), swath_nodata(tile, lay))


def terrain_factor(tile: TileSpec, lay: L.TileLayout) -> np.ndarray:
    """float32 (H, W) at 20 m: sigma0 relative to flat ground, (cos local / cos nominal incidence)^2.

    Slopes facing the radar (east-south-east of the targets: the descending pass looks west-north-
    west) see a smaller local incidence angle and echo more.
    """
    z = surface_heights(tile, lay, S1_RESOLUTION)
    dz_drow, dz_dcol = np.gradient(z, float(S1_RESOLUTION))
    toward = math.radians(S1_LOOK_AZIMUTH - 180.0)
    # Metres up per metre towards the radar: < 0 on a slope that faces it (descends towards it).
    rise = dz_dcol * math.sin(toward) - dz_drow * math.cos(toward)
    theta = np.radians(_incidence(tile, lay, pixel_centres(z.shape[1], S1_RESOLUTION)))[None, :]
    local = np.clip(theta + np.arctan(rise), math.radians(5.0), math.radians(85.0))
    return ((np.cos(local) / np.cos(theta)) ** 2).astype(np.float32)


def _incidence(tile: TileSpec, lay: L.TileLayout, cols: np.ndarray) -> np.ndarray:
    """Degrees per column (10 m units): smaller to the east, where the radar is."""
    return lay.s1_incidence_deg - _DEG_PER_10M * (cols - tile.width / 2)


def _flat_ground(ls: LS.Landscape, date: dt.date, tile: TileSpec, lay: L.TileLayout,
                 w: Weather) -> tuple[np.ndarray, np.ndarray]:
    """(VV, VH) linear sigma0 on flat ground without speckle, on the grid of `ls` (20 m)."""
    h, w_px = ls.cover.shape
    rows, cols = pixel_centres(h, S1_RESOLUTION), pixel_centres(w_px, S1_RESOLUTION)
    key = (tile.seed, 41, date.toordinal())
    moisture = np.clip(w.wetness + 0.15 * fractal_noise(key, rows, cols, cell=200.0, octaves=2), 0.0, 1.0)
    soil_db = _SOIL_DRY_DB + (_SOIL_WET_DB - _SOIL_DRY_DB) * moisture + 6.0 * (ls.soil - 1.0)
    soil_db += 0.8 * ls.texture
    soil_vv = _to_linear(soil_db)
    soil_vh = soil_vv * _to_linear(_SOIL_CROSS_DB)

    fc = green_cover(ls, date)
    a_vv, a_vh, extinction = (p[ls.crop] for p in _WCM)
    cos_t = np.float32(math.cos(math.radians(lay.s1_incidence_deg)))
    canopy = np.exp(-2.0 * extinction * fc / cos_t)  # two-way transmissivity
    volume = fc * cos_t * (1.0 - canopy)
    vv = a_vv * volume + canopy * soil_vv
    vh = a_vh * volume + canopy * soil_vh

    doy = date.timetuple().tm_yday
    leaves = float(np.interp(doy, (100, 150, 260), (0.0, 1.0, 0.8)))  # deciduous share leafs out
    for cls, (db_vv, db_vh) in _CLASS_DB.items():
        sel = ls.cover == cls
        spread = (2.5 if cls == LS.ROOF else 0.6) * ls.texture[sel]  # roofs: orientation matters
        seasonal = 0.8 * leaves if cls == LS.FOREST else 0.0
        vv[sel] = _to_linear(db_vv + spread + 0.5 * seasonal)
        vh[sel] = _to_linear(db_vh + spread + seasonal)
    water = ls.cover == LS.WATER
    gusts = 1.0 + 0.5 * fractal_noise((tile.seed, 42, date.toordinal()), rows, cols, cell=60.0)[water]
    vv[water] = _to_linear(np.minimum(-23.0 + 12.0 * w.wind * gusts, -9.0))
    vh[water] = _to_linear(np.minimum(-29.0 + 6.0 * w.wind * gusts, -17.0))
    return vv, vh


def keep_bits(a: np.ndarray, bits: int = KEPT_BITS) -> np.ndarray:
    """Round positive float32 values to `bits` mantissa bits (in place); zeros in the low bits
    compress well, and the rounding is far below the speckle."""
    u = a.view(np.uint32)
    drop = 23 - bits
    u += np.uint32(1 << (drop - 1))
    u &= np.uint32((0xFFFFFFFF >> drop) << drop)
    return a


def swath_nodata(tile: TileSpec, lay: L.TileLayout) -> np.ndarray | None:
    """bool (H, W) at 20 m outside the radar swath, or None when the tile is fully covered."""
    if lay.s1_swath_edge is None:
        return None
    h, w = tile.shape(S1_RESOLUTION)
    rows, cols = pixel_centres(h, S1_RESOLUTION), pixel_centres(w, S1_RESOLUTION)
    a, b, side = lay.s1_swath_edge
    edge = a + b * rows[:, None]
    return (cols[None, :] < edge) if side == "west" else (cols[None, :] > edge)


def render_s1(tile: TileSpec, lay: L.TileLayout, ground: RadarGround, date: dt.date) -> dict[str, np.ndarray]:
    """{"VV": ..., "VH": ...}: float32 linear sigma0 at 20 m, S1_NODATA outside the swath."""
    flat = _flat_ground(ground.cover, date, tile, lay, weather(date))
    bands = {}
    for i, (name, sigma0) in enumerate(zip(("VV", "VH"), flat)):
        out = sigma0 * ground.terrain
        out *= rng(tile.seed, 43, date.toordinal(), i).gamma(S1_ENL, 1.0 / S1_ENL, out.shape).astype(np.float32)
        keep_bits(out)
        if ground.nodata is not None:
            out[ground.nodata] = S1_NODATA
        bands[name] = out
    return bands
