"""SENTINEL1_GRD_DEMO of the generated demo catalog: items, grid, metadata, backscatter values that
follow the landscape of backend/demo/layout.py (tile T1), determinism.

The places checked are the layout's own features (10 m pixel row/col ranges, read at 20 m).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from pathlib import Path

import numpy as np
import pystac
import pytest
import rasterio
from pyproj import Transformer
from shapely.geometry import Point, shape

from backend.demo import DEMO_S1_COLLECTION, DEMO_S2_COLLECTION
from backend.demo import spec as S
from backend.demo.build import build_catalog
from backend.demo.layout import MAIZE, TILE1_LAYOUT, WHEAT

FIELDS = {crop: rect for rect, crop in TILE1_LAYOUT.fixed_fields}
# 10 m (row0, row1, col0, col1) boxes inside features of tile T1.
LAKE = (220, 300, 860, 1000)  # TILE1_LAYOUT.water[0], Ellipse(260, 930, 110, 190)
VILLAGE = (890, 1050, 130, 350)  # TILE1_LAYOUT.urban[0]
FOREST = (100, 300, 50, 400)  # TILE1_LAYOUT.forests[0], on the north-west hill
# Flanks of Hill(200, 220, radius 180) under that forest: the east one faces the radar.
HILL_EAST, HILL_WEST = (150, 250, 300, 380), (150, 250, 60, 140)
NODATA = S.S1_NODATA


def _inner(rect, margin=4):
    return (rect.r0 + margin, rect.r1 - margin, rect.c0 + margin, rect.c1 - margin)


WHEAT_FIELD, MAIZE_FIELD = _inner(FIELDS[WHEAT]), _inner(FIELDS[MAIZE])


@pytest.fixture(scope="module")
def root(demo_catalog_dir) -> Path:
    return demo_catalog_dir


@pytest.fixture(scope="module")
def stack(root) -> dict[str, np.ndarray]:
    """band -> (date, y, x) float32 as stored."""
    return {band: np.stack([_read(root, date, band) for date in S.S1_DATES]) for band in S.S1_BAND_NAMES}


def _item_dir(root: Path, date) -> Path:
    return root / DEMO_S1_COLLECTION / S.s1_item_id(S.TILE1, date)


def _read(root: Path, date, band: str) -> np.ndarray:
    with rasterio.open(_item_dir(root, date) / f"{band}.tif") as ds:
        return ds.read(1)


def _mean_db(values: np.ndarray, box) -> np.ndarray:
    """Mean sigma0 in dB over a 10 m box, per date (the mean of the linear power)."""
    r0, r1, c0, c1 = box
    sub = values[..., r0 // 2:r1 // 2, c0 // 2:c1 // 2]
    return 10 * np.log10(sub.mean(axis=(-2, -1)))


def _date(month: int, day: int) -> int:
    return S.S1_DATES.index(dt.date(2022, month, day))


# --- items, grid, metadata ---------------------------------------------------------------------


def test_items_grid_and_sar_fields(root):
    col = pystac.Catalog.from_file(str(root / "catalog.json")).get_child(DEMO_S1_COLLECTION)
    items = sorted(col.get_items(), key=lambda i: i.datetime)
    assert [i.datetime.isoformat() for i in items] == [f"{d}T05:25:43+00:00" for d in S.S1_DATES]
    assert all((b - a).days == 12 for a, b in zip(S.S1_DATES, S.S1_DATES[1:]))
    raw = json.loads((_item_dir(root, S.S1_DATES[0]) / f"{items[0].id}.json").read_text())
    props = raw["properties"]
    assert (props["proj:epsg"], props["proj:code"]) == (32632, "EPSG:32632")
    assert props["proj:shape"] == [640, 640]
    assert props["proj:transform"][:6] == [20, 0, 675000, 0, -20, 5157800]
    assert props["proj:bbox"] == list(S.TILE1.bounds())  # the 20 m grid covers the S2 tile exactly
    assert props["constellation"] == "sentinel-1" and props["instruments"] == ["c-sar"]
    assert (props["sar:instrument_mode"], props["sar:product_type"], props["sar:frequency_band"]) == ("IW", "GRD", "C")
    assert props["sar:polarizations"] == ["VV", "VH"]
    assert (props["sat:orbit_state"], props["sat:relative_orbit"]) == ("descending", 168)
    assert set(raw["assets"]) == {"VV", "VH"}
    for band, asset in raw["assets"].items():
        assert asset["sar:polarizations"] == [band]
        assert asset["raster:bands"] == [{"data_type": "float32", "nodata": NODATA, "spatial_resolution": 20}]
        assert asset["eo:bands"][0]["name"] == band and "common_name" not in asset["eo:bands"][0]
        with rasterio.open(_item_dir(root, S.S1_DATES[0]) / asset["href"]) as ds:
            assert ds.tags(ns="IMAGE_STRUCTURE")["LAYOUT"] == "COG" and ds.compression.name.lower() == "deflate"
            assert ds.dtypes[0] == "float32" and ds.nodata == NODATA and ds.res == (20.0, 20.0)
            assert ds.crs.to_epsg() == 32632 and ds.overviews(1) and ds.descriptions == (band,)


def test_collection_metadata(root):
    s1 = json.loads((root / DEMO_S1_COLLECTION / "collection.json").read_text())
    s2 = json.loads((root / DEMO_S2_COLLECTION / "collection.json").read_text())
    assert "SYNTHETIC" in s1["title"] and "SYNTHETIC" in s1["description"] and "LINEAR" in s1["description"]
    dims = s1["cube:dimensions"]
    assert list(dims) == ["x", "y", "t", "bands"] and dims["bands"]["values"] == ["VV", "VH"]
    assert dims["t"]["extent"] == ["2022-04-20T05:25:43Z", "2022-09-11T05:25:43Z"]
    assert [b["name"] for b in s1["summaries"]["eo:bands"]] == ["VV", "VH"]
    assert not any("common_name" in b for b in s1["summaries"]["eo:bands"])
    assert s1["summaries"]["sar:polarizations"] == ["VV", "VH"] and s1["summaries"]["sat:orbit_state"] == ["descending"]
    assert s1["summaries"]["proj:epsg"] == [32632] and s1["summaries"]["gsd"] == [20]
    assert s1["item_assets"]["VH"]["raster:bands"][0]["data_type"] == "float32"
    # Over the first tile of the S2 collection: inside its extent, overlapping its June dates.
    s1_box, s2_t1_box = s1["extent"]["spatial"]["bbox"][0], s2["extent"]["spatial"]["bbox"][1]
    assert s1_box[0] >= s2_t1_box[0] - 1e-6 and s1_box[2] <= s2_t1_box[2] + 1e-6
    assert s1_box[1] >= s2_t1_box[1] - 1e-6 and s1_box[3] <= s2_t1_box[3] + 1e-6
    # No extension listed whose schema the offline validators lack (see backend/demo/metadata.py).
    assert not any("/sar/" in e or "/sat/" in e for e in s1["stac_extensions"])


# --- values ------------------------------------------------------------------------------------


def test_nodata_is_the_swath_edge_on_every_date(root, stack):
    """The south-east corner lies outside the swath: nodata there in both bands on every date, valid
    positive values everywhere else; the item footprints leave the corner out."""
    a, b, _ = TILE1_LAYOUT.s1_swath_edge
    rows, cols = np.mgrid[0:640, 0:640]
    outside = (cols * 2 + 1) > a + b * (rows * 2 + 1)  # 20 m pixel centres in 10 m units
    assert 0.02 < outside.mean() < 0.15 and not outside[:200].any()
    for band, values in stack.items():
        assert (values[:, outside] == NODATA).all(), band
        valid = values[:, ~outside]
        assert np.isfinite(valid).all() and (valid > 0).all() and valid.max() < 10, band
    item = pystac.Item.from_file(str(_item_dir(root, S.S1_DATES[0]) / f"{S.s1_item_id(S.TILE1, S.S1_DATES[0])}.json"))
    geometry = shape(item.geometry)
    to_geo = Transformer.from_crs(32632, 4326, always_xy=True)
    corners = {name: Point(to_geo.transform(*S.TILE1.pixel_center(row, col))) for name, (row, col) in
               {"south-east": (1270, 1270), "north-west": (10, 10), "south-west": (1270, 10)}.items()}
    assert not geometry.contains(corners["south-east"])
    assert geometry.contains(corners["north-west"]) and geometry.contains(corners["south-west"])


def test_land_cover_shows_in_the_backscatter(stack):
    vv, vh = stack["VV"], stack["VH"]
    lake, village, forest = (_mean_db(vv, box) for box in (LAKE, VILLAGE, FOREST))
    fields = _mean_db(vv, WHEAT_FIELD)
    assert (village > forest + 2).all() and (forest > fields + 3).all()
    assert np.median(lake) < np.median(fields) - 4
    assert lake.min() < -20  # calm water is dark...
    assert lake.max() > -16  # ...and wind roughens it on some dates
    assert (village > -7).all() and (-9 < forest).all() and (forest < -6).all()
    # Cross-polarised echoes are weaker, most of all where the echo is a double bounce (village).
    for box in (LAKE, FOREST, WHEAT_FIELD, MAIZE_FIELD):
        assert (_mean_db(vv, box) > _mean_db(vh, box) + 3).all()
    assert np.ptp(_mean_db(vh, FOREST)) < 1.0  # forest: steady through the season


def test_crops_follow_their_season(stack):
    vh = stack["VH"]
    maize, wheat = _mean_db(vh, MAIZE_FIELD), _mean_db(vh, WHEAT_FIELD)
    # Maize: bare in early May, a closed canopy by August (volume scattering in VH).
    assert maize[_date(8, 6)] - maize[_date(5, 2)] > 6
    assert maize[_date(5, 2)] < -23 and maize[_date(8, 6)] > -18.5
    # Winter wheat: green in May, harvested mid-July.
    assert wheat[_date(5, 26)] - wheat[_date(7, 25)] > 4
    assert wheat[_date(5, 26)] > maize[_date(5, 26)] and wheat[_date(7, 25)] < maize[_date(7, 25)]


def test_slopes_facing_the_radar_are_brighter(stack):
    """The descending pass looks west-north-west: the hill's east flank faces it."""
    east, west = _mean_db(stack["VV"], HILL_EAST), _mean_db(stack["VV"], HILL_WEST)
    assert (east > west + 1).all()


def test_speckle_is_about_one_db(stack):
    """Two dates differ by their speckle alone in the forest (std of one date's speckle ~1 dB, of the
    difference of two ~1.4 dB); averaging 6 dates, as multi-temporal filtering does, reduces it."""
    r0, r1, c0, c1 = FOREST
    forest = 10 * np.log10(stack["VV"][:, r0 // 2:r1 // 2, c0 // 2:c1 // 2])
    single = (forest[_date(7, 1)] - forest[_date(7, 13)]).std()
    assert 1.0 < single < 1.8
    six = np.log10(np.mean(10 ** (forest[:6] / 10), axis=0)) - np.log10(np.mean(10 ** (forest[6:12] / 10), axis=0))
    assert (10 * six).std() < single / 2


# --- determinism -------------------------------------------------------------------------------


def _s1_hashes(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted((root / DEMO_S1_COLLECTION).rglob("*")) if p.is_file() and p.name != "collection.json"}


def test_two_generations_are_byte_identical(root, tmp_path):
    dates = [S.S1_DATES[0], S.S1_DATES[7]]
    first = build_catalog(tmp_path / "a", dates=[], tiles=[S.TILE1], s1_dates=dates).parent
    second = build_catalog(tmp_path / "b", dates=[], tiles=[S.TILE1], s1_dates=dates).parent
    hashes = _s1_hashes(first)
    assert len(hashes) == 2 * 3  # 2 items: VV, VH, item JSON
    assert _s1_hashes(second) == hashes
    session = _s1_hashes(root)
    assert {key: session[key] for key in hashes} == hashes  # and the same as the whole catalog's


def test_odc_stac_reads_the_stored_values(root):
    """The proj:* fields place the pixels: odc-stac loads on the native grid, the stored values unchanged."""
    odc_stac = pytest.importorskip("odc.stac")
    col = pystac.Catalog.from_file(str(root / "catalog.json")).get_child(DEMO_S1_COLLECTION)
    dates = S.S1_DATES[4:6]
    items = [i for i in col.get_items() if i.datetime.date() in dates]
    to_geo = Transformer.from_crs(32632, 4326, always_xy=True)
    bbox = to_geo.transform_bounds(679720, 5151080, 680680, 5151920)  # the openEO workflow-test area
    ds = odc_stac.load(items, bands=["VV", "VH"], bbox=bbox, crs="EPSG:32632", resolution=20)
    assert ds.sizes["time"] == 2 and ds.sizes["x"] >= 48 and ds.sizes["y"] >= 42
    cols = (ds.x.values - 675000 - 10) / 20
    rows = (5157800 - 10 - ds.y.values) / 20
    assert np.array_equal(cols, np.round(cols)) and np.array_equal(rows, np.round(rows))  # native pixel centres
    window = np.ix_(rows.astype(int), cols.astype(int))
    for t, date in enumerate(dates):
        for band in ("VV", "VH"):
            assert np.array_equal(ds[band].isel(time=t).values, _read(root, date, band)[window])
