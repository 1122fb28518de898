"""Fixed facts about the demo data: ids, bands, dates, tile grids.

Everything else in the package derives from these constants, so tests and docs can rely on them.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

# Bump when the output changes in a way a source-hash would not capture (e.g. a dependency-driven
# change); the marker also hashes this package's sources, so code edits regenerate automatically.
GENERATOR_VERSION = "1"

CATALOG_ID = "openeo-backend-demo"
DEMO_S2_COLLECTION = "SENTINEL2_L2A_DEMO"
DEMO_DEM_COLLECTION = "DEM_DEMO"
DEMO_S1_COLLECTION = "SENTINEL1_GRD_DEMO"
DEMO_COLLECTIONS = (DEMO_S2_COLLECTION, DEMO_S1_COLLECTION, DEMO_DEM_COLLECTION)

REFLECTANCE_NODATA = 0
SCL_NODATA = 0
DEM_NODATA = -32768
REFLECTANCE_SCALE = 0.0001  # DN 10000 == reflectance 1.0; offset 0 (no L2A baseline-04 shift)


@dataclass(frozen=True)
class BandSpec:
    name: str
    common_name: str | None
    center_wavelength: float | None  # micrometres
    full_width_half_max: float | None
    resolution: int  # metres
    dtype: str
    nodata: float
    description: str


S2_BANDS: tuple[BandSpec, ...] = (
    BandSpec("B02", "blue", 0.490, 0.098, 10, "uint16", 0, "Blue, surface reflectance x10000"),
    BandSpec("B03", "green", 0.560, 0.045, 10, "uint16", 0, "Green, surface reflectance x10000"),
    BandSpec("B04", "red", 0.665, 0.038, 10, "uint16", 0, "Red, surface reflectance x10000"),
    BandSpec("B08", "nir", 0.842, 0.145, 10, "uint16", 0, "NIR, surface reflectance x10000"),
    BandSpec("B11", "swir16", 1.610, 0.143, 20, "uint16", 0, "SWIR 1.6 um, surface reflectance x10000"),
    BandSpec(
        "SCL", None, None, None, 20, "uint8", 0,
        "Scene classification (ESA SCL codes): 0 nodata, 3 cloud shadow, 4 vegetation, "
        "5 not vegetated (bare soil/urban), 6 water, 8 cloud medium probability, "
        "9 cloud high probability, 10 thin cirrus",
    ),
)
S2_BAND_NAMES = tuple(b.name for b in S2_BANDS)
REFLECTANCE_BANDS = tuple(b for b in S2_BANDS if b.name != "SCL")

DEM_BAND = BandSpec("DEM", None, None, None, 30, "int16", DEM_NODATA, "Elevation in metres")

# Sentinel-1 GRD-like backscatter: sigma0 as LINEAR power ratio (not dB: means and the COG overviews
# average power, as they should; dB = 10 * log10(value)), float32, 20 m (the IW GRD resolution).
S1_NODATA = -32768.0
S1_RESOLUTION = 20
S1_BANDS: tuple[BandSpec, ...] = tuple(
    BandSpec(pol, None, None, None, S1_RESOLUTION, "float32", S1_NODATA,
             f"{pol} polarisation ({pol[0]} transmit, {pol[1]} receive), backscatter coefficient sigma0 "
             "as a linear power ratio (dB = 10 log10)")
    for pol in ("VV", "VH")
)
S1_BAND_NAMES = tuple(b.name for b in S1_BANDS)
# Only Sentinel-1A flew in 2022 (1B failed in December 2021): one descending relative orbit
# (early morning, right-looking, so the radar looks west-north-west) every 12 days.
S1_ACQUISITION_TIME = dt.time(5, 25, 43)
S1_DATES: tuple[dt.date, ...] = tuple(dt.date(2022, 4, 20) + dt.timedelta(days=12 * k) for k in range(13))
S1_RELATIVE_ORBIT = 168
S1_ORBIT_STATE = "descending"
S1_ENL = 20  # equivalent number of looks of the residual speckle (std ~ 1 dB)
S1_LOOK_AZIMUTH = 283.0  # degrees from north: heading ~193 (SSW) + 90 (right-looking)

# Every 5 days from 2022-06-02 (the S2 A/B revisit), thinned outside June. June holds one date
# per ISO week (W22..W26) so weekly aggregation over June has data in every period, and the
# openEO workflow tests' intervals [06-01,06-07), [06-07,06-14), [06-14,06-21) each hit a date.
ACQUISITION_TIME = dt.time(10, 20, 21)
S2_DATES: tuple[dt.date, ...] = tuple(
    dt.date(2022, m, d)
    for m, d in [(4, 18), (5, 13), (6, 2), (6, 12), (6, 17), (6, 22), (6, 27), (7, 17), (8, 16), (9, 15)]
)
# Dates on which the tiles lie at the edge of the swath (a diagonal no-data wedge).
ORBIT_EDGE_DATES = frozenset(dt.date(2022, m, d) for m, d in [(4, 18), (6, 12), (6, 22), (8, 16)])
# Approximate sun elevation (degrees) at 46.5 N, 10:20 UTC; sets the cloud-shadow length.
SUN_ELEVATION = {4: 52.0, 5: 60.0, 6: 65.0, 7: 62.0, 8: 55.0, 9: 45.0}
SUN_AZIMUTH = 155.0  # degrees from north; shadows fall towards 335 (NNW)

DEM_DATETIME = dt.datetime(2022, 1, 1, tzinfo=dt.timezone.utc)
DEM_END_DATETIME = dt.datetime(2022, 12, 31, 23, 59, 59, tzinfo=dt.timezone.utc)


@dataclass(frozen=True)
class TileSpec:
    """A square-pixel UTM grid; (x0, y0) is the upper-left corner, sizes are at 10 m."""

    id: str
    epsg: int
    x0: int
    y0: int
    width: int
    height: int
    seed: int

    def bounds(self, res: int = 10) -> tuple[float, float, float, float]:
        w, h = self.shape(res)[1], self.shape(res)[0]
        return (self.x0, self.y0 - h * res, self.x0 + w * res, self.y0)

    def shape(self, res: int) -> tuple[int, int]:
        # Ceil so a coarser grid (30 m DEM) fully covers the 10 m tile.
        return (-(-self.height * 10 // res), -(-self.width * 10 // res))

    def transform(self, res: int) -> tuple[float, float, float, float, float, float]:
        return (float(res), 0.0, float(self.x0), 0.0, float(-res), float(self.y0))

    def pixel_center(self, row: int, col: int, res: int = 10) -> tuple[float, float]:
        """UTM (x, y) of the centre of pixel (row, col) on the `res` grid."""
        return (self.x0 + (col + 0.5) * res, self.y0 - (row + 0.5) * res)


# Tile 1 contains the openEO workflow-test area (x 679720-680680, y 5151080-5151920, EPSG:32632)
# at 10 m pixel cols 472-568, rows 588-672. Origins are multiples of 20 m so 10/20 m grids nest.
TILE1 = TileSpec("T1", 32632, 675000, 5157800, 1280, 1280, seed=1001)
# Tile 2 sits just east of the UTM 32/33 zone boundary (12.0 E) at the same latitude, so a
# bbox spanning both tiles needs reprojection from two CRSs.
TILE2 = TileSpec("T2", 32633, 270000, 5155000, 512, 512, seed=2002)
TILES: tuple[TileSpec, ...] = (TILE1, TILE2)
S1_TILES: tuple[TileSpec, ...] = (TILE1,)  # Sentinel-1 covers tile 1 only (kept small)


def s2_item_id(tile: TileSpec, date: dt.date) -> str:
    return f"S2_DEMO_{tile.id}_{date:%Y%m%d}"


def s1_item_id(tile: TileSpec, date: dt.date) -> str:
    return f"S1_DEMO_{tile.id}_{date:%Y%m%d}"


def dem_item_id(tile: TileSpec) -> str:
    return f"DEM_DEMO_{tile.id}"


def acquisition_datetime(date: dt.date, time: dt.time = ACQUISITION_TIME) -> dt.datetime:
    return dt.datetime.combine(date, time, tzinfo=dt.timezone.utc)
