"""Where things are: land-cover features, terrain and weather per tile, as plain data.

All coordinates are in 10 m tile pixels (row from the top, col from the left of the tile), i.e.
UTM x = x0 + 10*col, y = y0 - 10*row. Tests assert values at these places, so changing a number
here changes what the documented "known pixels" contain.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

WHEAT, MAIZE, SUNFLOWER, MEADOW, FALLOW = 1, 2, 3, 4, 5
CROP_NAMES = {WHEAT: "winter wheat", MAIZE: "maize", SUNFLOWER: "sunflower",
              MEADOW: "meadow", FALLOW: "fallow"}


@dataclass(frozen=True)
class Rect:
    r0: float
    r1: float
    c0: float
    c1: float


@dataclass(frozen=True)
class Ellipse:
    r: float
    c: float
    ar: float  # semi-axis along rows
    ac: float  # semi-axis along cols


@dataclass(frozen=True)
class River:
    """Centre line col = c + amp * sin((row - r0) / period), between rows r0 and r1."""

    r0: float
    r1: float
    c: float
    amp: float
    period: float
    width: float


Shape = Rect | Ellipse | River


@dataclass(frozen=True)
class Hill:
    r: float
    c: float
    radius: float
    height: float  # metres


@dataclass(frozen=True)
class TileLayout:
    forests: tuple[tuple[Shape, float], ...]  # (shape, edge roughness in px)
    urban: tuple[Rect, ...]
    bare: tuple[Rect, ...]
    water: tuple[Shape, ...]
    fixed_block: Rect | None  # painted as farm track, then fixed_fields on top
    fixed_fields: tuple[tuple[Rect, int], ...]
    # Terrain: valley floor falls along rows; walls rise with distance from the main river.
    valley: River
    floor_m: float
    floor_slope_m_per_px: float
    wall_height_m: float
    wall_width_px: float
    hills: tuple[Hill, ...]
    # Swath edge: no data where col < a + b*row ("west") or col > a + b*row ("east").
    orbit_edge: tuple[float, float, str]
    clouds: dict[dt.date, tuple[tuple[float, float, float], ...]] = field(default_factory=dict)
    cirrus: dict[dt.date, tuple[tuple[float, float, float], ...]] = field(default_factory=dict)
    # Sentinel-1 (tiles of spec.S1_TILES): incidence angle (degrees) at the tile's centre; the edge
    # of the radar swath, same form as orbit_edge but on every S1 date (one orbit, one ground track).
    s1_incidence_deg: float = 38.0
    s1_swath_edge: tuple[float, float, str] | None = None


def _d(m: int, d: int) -> dt.date:
    return dt.date(2022, m, d)


# Tile 1 (EPSG:32632, 1280 x 1280). The openEO test area is rows 588-672, cols 472-568: it is
# covered by the hand-made fixed_fields block (wheat, maize, meadow with a pond) and is cloud-free
# on every date except 2022-06-12, when a thick cloud (centre row 640, col 560) covers it.
_RIVER1 = River(r0=360, r1=1290, c=930, amp=60, period=90, width=8)
TILE1_LAYOUT = TileLayout(
    forests=((Rect(-50, 400, -50, 450), 25.0), (Ellipse(1230, 1150, 90, 160), 12.0)),
    urban=(Rect(880, 1060, 120, 360),),
    bare=(Rect(1120, 1220, 600, 760),),
    water=(Ellipse(260, 930, 110, 190), _RIVER1, Ellipse(652, 520, 14, 26)),
    fixed_block=Rect(556, 704, 436, 644),
    fixed_fields=(
        (Rect(560, 628, 440, 518), WHEAT),
        (Rect(560, 628, 522, 600), MAIZE),
        (Rect(560, 628, 604, 640), SUNFLOWER),
        (Rect(632, 700, 440, 560), MEADOW),
        (Rect(632, 700, 564, 640), SUNFLOWER),
    ),
    valley=_RIVER1,
    floor_m=282.0,
    floor_slope_m_per_px=0.02,
    wall_height_m=350.0,
    wall_width_px=250.0,
    hills=(Hill(200, 220, 180, 650), Hill(1100, 400, 150, 220), Hill(700, 1200, 200, 300)),
    orbit_edge=(240.0, -0.15, "west"),
    clouds={
        _d(4, 18): ((180, 700, 90), (1000, 880, 120), (1150, 300, 70)),
        _d(5, 13): ((90, 1190, 35),),
        _d(6, 2): ((300, 250, 80), (960, 1120, 60)),
        _d(6, 12): ((640, 560, 110), (200, 1000, 150), (1120, 520, 130), (850, 1200, 70)),
        _d(6, 22): ((450, 1000, 60), (760, 180, 50)),
        _d(6, 27): ((150, 520, 100), (1100, 1000, 90)),
        _d(7, 17): ((250, 400, 30), (320, 760, 25), (820, 300, 35), (900, 820, 30),
                    (1050, 650, 28), (1200, 1150, 40), (480, 1180, 30)),
        _d(9, 15): ((400, 1150, 90),),
    },
    cirrus={
        _d(4, 18): ((300, 1100, 260),),
        _d(6, 17): ((1000, 900, 250),),
        _d(9, 15): ((1000, 1000, 350),),
    },
    s1_incidence_deg=36.5,
    s1_swath_edge=(1400.0, -0.23, "east"),  # the near-range edge clips the south-east corner
)

# Tile 2 (EPSG:32633, 512 x 512): river valley with fields, forested hill to the east.
_RIVER2 = River(r0=-10, r1=522, c=250, amp=30, period=50, width=10)
TILE2_LAYOUT = TileLayout(
    forests=((Rect(-50, 562, 380, 562), 20.0),),
    urban=(Rect(60, 150, 40, 150),),
    bare=(Rect(400, 460, 60, 140),),
    water=(_RIVER2,),
    fixed_block=None,
    fixed_fields=(),
    valley=_RIVER2,
    floor_m=242.0,
    floor_slope_m_per_px=0.02,
    wall_height_m=300.0,
    wall_width_px=150.0,
    hills=(Hill(256, 470, 150, 500),),
    orbit_edge=(490.0, -0.15, "east"),
    clouds={
        _d(4, 18): ((100, 300, 60),),
        _d(6, 12): ((300, 200, 90),),
        _d(6, 27): ((400, 420, 50),),
        _d(7, 17): ((200, 100, 25), (420, 260, 30)),
    },
    cirrus={_d(9, 15): ((256, 256, 200),)},
)

LAYOUTS = {"T1": TILE1_LAYOUT, "T2": TILE2_LAYOUT}

# Pixels whose content is fixed by the layout (10 m row, col), for value-asserting tests.
# Clear-sky content; check SCL for clouds on a given date (T1: 06-12 clouds the official area;
# T1 "lake"/"river" are under cirrus on 04-18/09-15). "swath_edge" is 0 on ORBIT_EDGE_DATES.
KNOWN_PIXELS: dict[str, dict[str, tuple[int, int]]] = {
    "T1": {
        "lake": (260, 930), "pond": (652, 520), "river": (800, 871),
        "wheat": (600, 480), "maize": (600, 545), "meadow": (660, 460), "sunflower": (660, 600),
        "forest": (200, 300), "village_street": (950, 200), "quarry": (1170, 680),
        "swath_edge": (100, 50), "cloud_20220612": (640, 560),
    },
    "T2": {
        "river": (256, 225), "forest": (256, 430), "village_street": (100, 90),
        "quarry": (430, 100), "swath_edge": (20, 505),
    },
}
