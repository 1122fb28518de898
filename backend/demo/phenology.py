"""Cloud-free surface reflectance of a landscape on a given date.

Each pixel is a linear mix of a "green" and a "background" spectrum, weighted by the green
vegetation cover fraction fc. Crops take fc from a seasonal calendar, so NDVI follows realistic
phenology (wheat peaks late May, maize in August...). Values are reflectance x 10000.
"""

from __future__ import annotations

import datetime as dt

import numpy as np

from backend.demo import landscape as LS
from backend.demo import layout as L

# Band order for all spectra: B02, B03, B04, B08, B11.
_CROP_GREEN = (250, 550, 300, 4200, 1800)
_SOIL = (900, 1200, 1500, 2200, 3000)
_FOREST = (200, 380, 220, 3000, 1350)
_WATER = (500, 520, 320, 180, 80)
_ROOF = (1250, 1300, 1500, 1850, 2400)
_STREET = (950, 980, 1020, 1150, 1350)
_BARE = (1500, 1800, 2100, 2500, 3400)

# Per class: (green spectrum, background spectrum); fc decides the mix.
_GREEN = np.zeros((5, LS.N_CLASSES), np.float32)
_BACKGROUND = np.zeros((5, LS.N_CLASSES), np.float32)
for _cls, _green, _bg in [
    (LS.FIELD, _CROP_GREEN, _SOIL), (LS.TRACK, _CROP_GREEN, _SOIL), (LS.FOREST, _FOREST, _FOREST),
    (LS.WATER, _WATER, _WATER), (LS.ROOF, _ROOF, _ROOF), (LS.STREET, _STREET, _STREET),
    (LS.BARE, _BARE, _BARE),
]:
    _GREEN[:, _cls], _BACKGROUND[:, _cls] = _green, _bg

# Green cover fraction keyframes (day of year, fc); linear in between.
CALENDARS: dict[int, tuple[tuple[int, float], ...]] = {
    # Winter wheat: green in April, peak late May / early June, yellow by July, harvest ~14 July.
    L.WHEAT: ((90, 0.35), (110, 0.50), (135, 0.85), (155, 0.90), (170, 0.70), (185, 0.30),
              (195, 0.12), (230, 0.15), (260, 0.25)),
    # Maize: bare until late May, closes canopy in July, senesces in September.
    L.MAIZE: ((90, 0.05), (135, 0.06), (155, 0.20), (175, 0.55), (200, 0.92), (235, 0.90),
              (260, 0.55)),
    # Sunflower: emerges in May, peaks early July.
    L.SUNFLOWER: ((90, 0.05), (125, 0.08), (150, 0.35), (170, 0.70), (190, 0.90), (215, 0.75),
                  (240, 0.35), (260, 0.20)),
    # Meadow: green all season, mown ~6 June (doy 157) and ~10 August (doy 222).
    L.MEADOW: ((90, 0.60), (130, 0.85), (156, 0.90), (158, 0.45), (185, 0.80), (220, 0.85),
               (222, 0.50), (250, 0.75), (260, 0.75)),
    # Fallow: ploughed soil with a few weeds.
    L.FALLOW: ((90, 0.08), (180, 0.15), (260, 0.12)),
}
_TRACK_FC = 0.3  # grassy farm tracks
# Texture amplitudes: small and smooth on purpose, pixel-level entropy is what makes COGs big.
FC_TEXTURE, SOIL_TEXTURE, CROWN_TEXTURE, WATER_TEXTURE = 0.025, 0.015, 0.04, 6.0


def cover_fraction(crop: int, doy: float | np.ndarray) -> np.ndarray:
    days, fc = zip(*CALENDARS[crop])
    return np.interp(doy, days, fc).astype(np.float32)


def green_cover(ls: LS.Landscape, date: dt.date) -> np.ndarray:
    """float32 green vegetation cover fraction per pixel on `date` (crops follow their calendar;
    tracks are grassy, forest is 1; other classes get a meaningless small value)."""
    doy = date.timetuple().tm_yday
    fc = np.zeros(ls.cover.shape, np.float32)
    for crop in CALENDARS:
        sel = ls.crop == crop
        fc[sel] = cover_fraction(crop, doy - ls.shift[sel])
    fc[ls.cover == LS.TRACK] = _TRACK_FC
    fc = np.clip(fc * (1.0 + FC_TEXTURE * ls.texture), 0.02, 0.98)
    fc[ls.cover == LS.FOREST] = 1.0
    return fc


def surface_reflectance(ls: LS.Landscape, date: dt.date) -> np.ndarray:
    """float32 (5, H, W) reflectance x 10000 without atmosphere effects or sensor noise."""
    doy = date.timetuple().tm_yday
    # Forest is all "green" (fc 1); its NIR greens up a little in spring (deciduous share).
    fc = green_cover(ls, date)

    brightness = ls.soil * (1.0 + SOIL_TEXTURE * ls.texture)
    out = np.empty((5,) + ls.cover.shape, np.float32)
    for b in range(5):
        green = _GREEN[b][ls.cover]
        background = _BACKGROUND[b][ls.cover] * brightness
        out[b] = fc * green + (1.0 - fc) * background
    forest = ls.cover == LS.FOREST
    crowns = 1.0 + CROWN_TEXTURE * ls.texture[forest]
    for b in range(5):
        out[b][forest] *= crowns
    out[3][forest] *= np.float32(np.interp(doy, (100, 150, 260), (0.92, 1.0, 0.97)))
    water = ls.cover == LS.WATER
    # Water: small static ripples, a bit greener/more turbid in summer (algae).
    turbid = np.float32(np.interp(doy, (100, 200, 260), (0.0, 60.0, 30.0)))
    for b, k in enumerate((0.3, 1.0, 0.6, 0.2, 0.0)):
        out[b][water] = _WATER[b] + k * turbid + WATER_TEXTURE * ls.texture[water]
    return out


def ndvi(refl: np.ndarray) -> np.ndarray:
    red, nir = refl[2], refl[3]
    return (nir - red) / np.maximum(nir + red, 1.0)
