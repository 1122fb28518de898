"""The generated demo STAC catalog: structure, COG layout, pixel values, determinism, validity.

The catalog is the session's (generated once, about 10 s; the live server uses the same one); the
value checks use the documented "known pixels" of backend/demo/layout.py (10 m pixel row/col within
a tile). The Sentinel-1 collection's own checks: test_demo_sentinel1.py.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import time
from pathlib import Path
from urllib.parse import urlparse

import numpy as np
import pystac
import pytest
import rasterio

from backend.demo import DEMO_DEM_COLLECTION, DEMO_S1_COLLECTION, DEMO_S2_COLLECTION, ensure_demo_catalog
from backend.demo import spec as S
from backend.demo.build import build_catalog
from backend.demo.ensure import MARKER, ensure_built
from backend.demo.layout import KNOWN_PIXELS

OFFICIAL = dict(west=679720, east=680680, south=5151080, north=5151920)  # EPSG:32632
SCHEMA_DIR = Path(__file__).resolve().parents[3] / "shared" / "conformance-assets" / "stac-schemas"

# Known pixels of tile T1 (row, col at 10 m); see backend/demo/layout.py.
K1 = KNOWN_PIXELS["T1"]
LAKE, WHEAT, MAIZE, FOREST = K1["lake"], K1["wheat"], K1["maize"], K1["forest"]
CLOUD_0612 = K1["cloud_20220612"]  # thick cloud over the official area on 2022-06-12
EDGE = K1["swath_edge"]  # inside the swath-edge wedge on ORBIT_EDGE_DATES
D = {d.strftime("%m%d"): d for d in S.S2_DATES}


@pytest.fixture(scope="module")
def demo(demo_catalog_dir) -> dict:
    size = sum(p.stat().st_size for p in demo_catalog_dir.rglob("*") if p.is_file())
    print(f"\ndemo catalog: {size / 1e6:.1f} MB")
    return {"root": demo_catalog_dir, "catalog_json": demo_catalog_dir / "catalog.json"}


def _item_dir(root: Path, tile: S.TileSpec, date: dt.date) -> Path:
    return root / DEMO_S2_COLLECTION / S.s2_item_id(tile, date)


def _read(root: Path, tile: S.TileSpec, date: dt.date, band: str) -> np.ndarray:
    with rasterio.open(_item_dir(root, tile, date) / f"{band}.tif") as ds:
        return ds.read(1)


def _pixel(root, date, band, rc, tile=S.TILE1) -> int:
    """Value at a 10 m (row, col); 20 m bands are sampled at the containing pixel."""
    r, c = rc
    if band in ("B11", "SCL"):
        r, c = r // 2, c // 2
    with rasterio.open(_item_dir(root, tile, date) / f"{band}.tif") as ds:
        return int(ds.read(1, window=((r, r + 1), (c, c + 1)))[0, 0])


def _ndvi(root, date, rc) -> float:
    red, nir = _pixel(root, date, "B04", rc), _pixel(root, date, "B08", rc)
    return (nir - red) / (nir + red)


# --- catalog structure -------------------------------------------------------------------------


def test_catalog_readable_with_pystac(demo):
    cat = pystac.Catalog.from_file(str(demo["catalog_json"]))
    assert cat.id == "openeo-backend-demo"
    collections = {c.id: c for c in cat.get_children()}
    assert set(collections) == {DEMO_S2_COLLECTION, DEMO_S1_COLLECTION, DEMO_DEM_COLLECTION}
    s2_items = list(collections[DEMO_S2_COLLECTION].get_items())
    assert len(s2_items) == len(S.S2_DATES) * len(S.TILES)
    assert len(list(collections[DEMO_DEM_COLLECTION].get_items())) == len(S.TILES)
    assert len(list(collections[DEMO_S1_COLLECTION].get_items())) == len(S.S1_DATES) * len(S.S1_TILES)
    for item in s2_items:
        assert set(item.assets) == {"B02", "B03", "B04", "B08", "B11", "SCL"}
        for asset in item.assets.values():
            assert Path(asset.get_absolute_href()).is_file()


def test_hrefs_are_relative(demo):
    """SELF_CONTAINED: the catalog can be moved (it is renamed into place after generation)."""
    for path in demo["root"].rglob("*.json"):
        doc = json.loads(path.read_text())
        hrefs = [link["href"] for link in doc.get("links", [])]
        hrefs += [a["href"] for a in doc.get("assets", {}).values()]
        assert all(h.startswith(("./", "../")) for h in hrefs), path
        assert doc["stac_version"] == "1.0.0"


def test_dates_cover_growing_season_and_official_test_intervals(demo):
    col = pystac.Catalog.from_file(str(demo["catalog_json"])).get_child(DEMO_S2_COLLECTION)
    dates = sorted({i.datetime.date() for i in col.get_items()})
    assert len(dates) >= 6
    assert dates[0].month == 4 and dates[-1].month == 9
    assert any(dt.date(2022, 6, 1) <= d < dt.date(2022, 6, 3) for d in dates)
    # openEO workflow tests: aggregate_temporal intervals and weekly periods over June.
    for start, end in [("06-01", "06-07"), ("06-07", "06-14"), ("06-14", "06-21")]:
        lo, hi = (dt.date.fromisoformat(f"2022-{x}") for x in (start, end))
        assert any(lo <= d < hi for d in dates), (start, end)
    june_weeks = {d.isocalendar()[1] for d in dates if d.month == 6}
    assert june_weeks == {22, 23, 24, 25, 26}


def test_tile_grids_and_projection_fields(demo):
    # Raw JSON: pystac migrates projection 1.2 -> 2.0 on read, which drops proj:epsg.
    t1, t2 = (json.loads((_item_dir(demo["root"], t, D["0602"]) / f"{S.s2_item_id(t, D['0602'])}.json")
                         .read_text()) for t in S.TILES)
    assert (t1["properties"]["proj:epsg"], t1["properties"]["proj:code"]) == (32632, "EPSG:32632")
    assert (t2["properties"]["proj:epsg"], t2["properties"]["proj:code"]) == (32633, "EPSG:32633")
    west, south, east, north = t1["properties"]["proj:bbox"]
    assert west <= OFFICIAL["west"] and east >= OFFICIAL["east"]
    assert south <= OFFICIAL["south"] and north >= OFFICIAL["north"]
    assert t1["properties"]["proj:shape"] == [1280, 1280]
    assert t1["properties"]["proj:transform"][:6] == [10, 0, 675000, 0, -10, 5157800]
    for band in ("B11", "SCL"):  # 20 m assets carry their own grid
        assert t1["assets"][band]["proj:shape"] == [640, 640]
        assert t1["assets"][band]["proj:transform"][0] == 20
    assert "proj:shape" not in t1["assets"]["B04"]
    assert t2["properties"]["proj:shape"] == [512, 512]
    # The 20 m grid nests in the 10 m grid.
    assert all(v % 20 == 0 for v in (S.TILE1.x0, S.TILE1.y0, S.TILE2.x0, S.TILE2.y0))


def test_collection_metadata(demo):
    cat = pystac.Catalog.from_file(str(demo["catalog_json"]))
    s2 = cat.get_child(DEMO_S2_COLLECTION).to_dict()
    assert "SYNTHETIC" in s2["title"] and "SYNTHETIC" in s2["description"]
    assert s2["license"] == "CC0-1.0"
    assert s2["providers"][0]["roles"] == ["producer", "host"]
    bands = ["B02", "B03", "B04", "B08", "B11", "SCL"]
    assert [b["name"] for b in s2["summaries"]["eo:bands"]] == bands
    assert [b.get("common_name") for b in s2["summaries"]["eo:bands"]] == [
        "blue", "green", "red", "nir", "swir16", None]
    assert s2["summaries"]["proj:epsg"] == [32632, 32633]
    dims = s2["cube:dimensions"]
    assert dims["bands"]["values"] == bands
    assert dims["t"]["extent"] == ["2022-04-18T10:20:21Z", "2022-09-15T10:20:21Z"]
    assert dims["x"]["reference_system"] == 4326
    assert set(s2["item_assets"]) == set(bands)
    b04 = s2["item_assets"]["B04"]["raster:bands"][0]
    assert (b04["scale"], b04["offset"], b04["nodata"], b04["data_type"]) == (0.0001, 0, 0, "uint16")
    # The overall spatial extent covers both tiles (two UTM zones either side of 12 E).
    west, _, east, _ = s2["extent"]["spatial"]["bbox"][0]
    assert west < 11.3 and east > 12.05

    dem = cat.get_child(DEMO_DEM_COLLECTION).to_dict()
    assert "SYNTHETIC" in dem["description"]
    assert dem["cube:dimensions"]["bands"]["values"] == ["DEM"]


# --- raster files ------------------------------------------------------------------------------


def _check_cog(path: Path, dtype: str, nodata, shape, transform):
    with rasterio.open(path) as ds:
        assert ds.tags(ns="IMAGE_STRUCTURE")["LAYOUT"] == "COG"
        assert ds.compression.name.lower() == "deflate"
        assert ds.block_shapes == [(256, 256)]
        assert ds.overviews(1), "no overviews"
        assert ds.dtypes[0] == dtype and ds.nodata == nodata
        assert list(ds.shape) == list(shape)
        assert list(ds.transform)[:6] == list(transform)[:6]


def test_cogs_tiled_compressed_with_overviews(demo):
    cat = pystac.Catalog.from_file(str(demo["catalog_json"]))
    items = [cat.get_child(DEMO_S2_COLLECTION).get_item(S.s2_item_id(t, D["0602"])) for t in S.TILES]
    items += list(cat.get_child(DEMO_DEM_COLLECTION).get_items())
    items += [cat.get_child(DEMO_S1_COLLECTION).get_item(S.s1_item_id(S.TILE1, S.S1_DATES[0]))]
    for item in items:
        for key, asset in item.assets.items():
            raster = asset.extra_fields["raster:bands"][0]
            shape = asset.extra_fields.get("proj:shape", item.properties["proj:shape"])
            transform = asset.extra_fields.get("proj:transform", item.properties["proj:transform"])
            _check_cog(Path(asset.get_absolute_href()), raster["data_type"], raster["nodata"],
                       shape, transform)
            with rasterio.open(asset.get_absolute_href()) as ds:
                assert f"EPSG:{ds.crs.to_epsg()}" == item.properties["proj:code"]
    with rasterio.open(items[0].assets["SCL"].get_absolute_href()) as ds:
        assert ds.tags()["OVERVIEW_RESAMPLING"] == "NEAREST"
    with rasterio.open(items[0].assets["B04"].get_absolute_href()) as ds:
        assert ds.tags()["OVERVIEW_RESAMPLING"] == "AVERAGE"


def test_dtypes_and_value_ranges(demo):
    root = demo["root"]
    b04 = _read(root, S.TILE1, D["0602"], "B04")
    scl = _read(root, S.TILE1, D["0602"], "SCL")
    assert b04.dtype == np.uint16 and scl.dtype == np.uint8
    assert b04.shape == (1280, 1280) and scl.shape == (640, 640)
    assert set(np.unique(scl)) <= {0, 3, 4, 5, 6, 8, 9, 10}
    assert 200 < np.median(b04) < 2000


def test_known_pixels_land_cover_and_phenology(demo):
    root = demo["root"]
    clear_lake = [d for d in S.S2_DATES if _pixel(root, d, "SCL", LAKE) == 6]
    assert len(clear_lake) >= 6
    for d in clear_lake:
        assert _pixel(root, d, "B08", LAKE) < 500
        assert _ndvi(root, d, LAKE) < 0
    # Winter wheat greens up from April to early June, then is harvested in July.
    assert _ndvi(root, D["0418"], WHEAT) < _ndvi(root, D["0513"], WHEAT) < _ndvi(root, D["0602"], WHEAT)
    assert _ndvi(root, D["0602"], WHEAT) > 0.75
    assert 300 <= _pixel(root, D["0602"], "B04", WHEAT) <= 600
    assert 2500 <= _pixel(root, D["0602"], "B08", WHEAT) <= 4500
    assert _ndvi(root, D["0717"], WHEAT) < 0.4
    # Maize peaks later than wheat.
    assert _ndvi(root, D["0418"], MAIZE) < 0.35 < 0.75 < _ndvi(root, D["0717"], MAIZE)
    for d in S.S2_DATES:  # forest: high, stable NIR
        assert _pixel(root, d, "B08", FOREST) > 2500 and _ndvi(root, d, FOREST) > 0.75


@pytest.mark.parametrize("tile", S.TILES, ids=lambda t: t.id)
def test_known_pixels_scene_classes_on_a_clear_date(demo, tile):
    expected = {"lake": 6, "pond": 6, "river": 6, "forest": 4, "wheat": 5, "maize": 4,
                "meadow": 4, "sunflower": 4, "village_street": 5, "quarry": 5}
    for name, rc in KNOWN_PIXELS[tile.id].items():
        if name in expected:  # 2022-08-16: cloud-free in both tiles
            assert _pixel(demo["root"], D["0816"], "SCL", rc, tile) == expected[name], name
    x, y = tile.pixel_center(*KNOWN_PIXELS[tile.id]["river"])
    west, south, east, north = tile.bounds()
    assert west < x < east and south < y < north


def test_clouds_are_bright_and_flagged(demo):
    root = demo["root"]
    assert _pixel(root, D["0612"], "SCL", CLOUD_0612) == 9
    for band in ("B02", "B03", "B04", "B08"):
        assert _pixel(root, D["0612"], band, CLOUD_0612) > 4000
    for d in S.S2_DATES:
        b02 = _read(root, S.TILE1, d, "B02")[::2, ::2]
        scl = _read(root, S.TILE1, d, "SCL")
        cloudy = np.isin(scl, (8, 9))
        if d in (D["0612"], D["0418"]):
            assert cloudy.mean() > 0.02
        if cloudy.any():
            assert b02[cloudy].mean() > 3000
            shadow = scl == 3
            assert shadow.any() and b02[shadow].mean() < b02[scl == 4].mean()
        assert b02[scl == 4].mean() < 800


def test_cloud_cover_matches_scl(demo):
    col = pystac.Catalog.from_file(str(demo["catalog_json"])).get_child(DEMO_S2_COLLECTION)
    for item in col.get_items():
        with rasterio.open(item.assets["SCL"].get_absolute_href()) as ds:
            scl = ds.read(1)
        expected = 100 * np.isin(scl, (8, 9, 10)).sum() / (scl != 0).sum()
        assert item.properties["eo:cloud_cover"] == pytest.approx(expected, abs=0.01)
    assert max(i.properties["eo:cloud_cover"] for i in col.get_items()) > 5


def test_orbit_edge_strip_is_nodata_in_all_bands(demo):
    root = demo["root"]
    assert S.ORBIT_EDGE_DATES and S.ORBIT_EDGE_DATES < set(S.S2_DATES)
    for d in S.S2_DATES:
        values = [_pixel(root, d, b, EDGE) for b in S.S2_BAND_NAMES]
        if d in S.ORBIT_EDGE_DATES:
            assert values == [0] * 6, d
        else:
            assert all(v > 0 for v in values), d


def test_official_area_has_data_on_every_date(demo):
    r0, r1 = (S.TILE1.y0 - OFFICIAL["north"]) // 10, (S.TILE1.y0 - OFFICIAL["south"]) // 10
    c0, c1 = (OFFICIAL["west"] - S.TILE1.x0) // 10, (OFFICIAL["east"] - S.TILE1.x0) // 10
    for d in S.S2_DATES:
        assert (_read(demo["root"], S.TILE1, d, "B04")[r0:r1, c0:c1] > 0).all()
        assert (_read(demo["root"], S.TILE1, d, "SCL")[r0 // 2:r1 // 2, c0 // 2:c1 // 2] > 0).all()


def test_dem_values(demo):
    path = demo["root"] / DEMO_DEM_COLLECTION / S.dem_item_id(S.TILE1) / "DEM.tif"
    with rasterio.open(path) as ds:
        assert ds.dtypes[0] == "int16" and ds.nodata == -32768 and ds.res == (30.0, 30.0)
        z = ds.read(1)
    assert 150 < z.min() and z.max() < 2500 and z.max() - z.min() > 300
    lake = z[80:94, 300:320]  # around the lake centre (row 260, col 930 at 10 m)
    assert lake.min() == lake.max()  # a level water surface
    assert z[60, 70] > lake.max() + 200  # the forested hill in the north-west


# --- determinism and idempotence ---------------------------------------------------------------


def _hashes(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file() and p.parent != root
            and p.name != "collection.json"}


def test_generation_is_deterministic(demo, tmp_path):
    """An item depends only on (tile, date), so a partial rebuild must reproduce its bytes."""
    build_catalog(tmp_path / "again", dates=[D["0612"]], s1_dates=[S.S1_DATES[4]])
    again = _hashes(tmp_path / "again")
    full = _hashes(demo["root"])
    assert len(again) == 2 * 7 + 2 * 2 + 3  # 2 S2 items (6 COGs + JSON), 2 DEM items, 1 S1 item (2 COGs + JSON)
    assert {k: full[k] for k in again} == again


def test_second_call_is_fast_and_does_not_rewrite(demo):
    root = demo["root"]
    watched = [root / "catalog.json", root / MARKER,
               _item_dir(root, S.TILE1, D["0602"]) / "B04.tif"]
    before = [p.stat().st_mtime_ns for p in watched]
    started = time.monotonic()
    assert ensure_demo_catalog(root) == demo["catalog_json"]
    assert time.monotonic() - started < 1.0
    assert [p.stat().st_mtime_ns for p in watched] == before
    assert not [p for p in root.parent.iterdir() if ".tmp-" in p.name or ".old-" in p.name]


def _fake_build(tag: str):
    def build(tmp: Path) -> None:
        tmp.mkdir()
        (tmp / "catalog.json").write_text(tag)
    return build


def test_ensure_rebuilds_on_new_version_and_survives_crashes(tmp_path):
    dest = tmp_path / "cat"
    calls = []

    def counting(tag):
        def build(tmp):
            calls.append(tag)
            _fake_build(tag)(tmp)
        return build

    assert ensure_built(dest, "v1", counting("v1")) == dest / "catalog.json"
    ensure_built(dest, "v1", counting("v1-again"))
    assert calls == ["v1"]  # up to date: not rebuilt

    def crash(tmp: Path) -> None:
        tmp.mkdir()
        (tmp / "catalog.json").write_text("half")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        ensure_built(dest, "v2", crash)
    assert (dest / "catalog.json").read_text() == "v1"  # old catalog intact
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".cat.tmp")] == []

    ensure_built(dest, "v2", counting("v2"))
    assert (dest / "catalog.json").read_text() == "v2"
    assert (dest / MARKER).read_text().strip() == "v2"


def test_ensure_refuses_to_replace_foreign_directory(tmp_path):
    dest = tmp_path / "mine"
    dest.mkdir()
    (dest / "precious.txt").write_text("user data")
    with pytest.raises(RuntimeError):
        ensure_built(dest, "v1", _fake_build("v1"))
    assert (dest / "precious.txt").exists()


# --- interoperability --------------------------------------------------------------------------


def _schema_registry():
    jsonschema = pytest.importorskip("jsonschema")
    from referencing import Registry, Resource
    from referencing.exceptions import NoSuchResource
    from referencing.jsonschema import DRAFT7

    geojson_dir = Path(pystac.__file__).parent / "validation" / "jsonschemas" / "geojson"

    def retrieve(uri: str):
        url = urlparse(uri)
        if url.netloc == "geojson.org":  # not in the offline bundle; pystac ships copies
            path = geojson_dir / Path(url.path).name
        elif url.netloc == "proj.org":
            # PROJJSON is only reachable through oneOf branches for CRS *objects*; we write EPSG
            # codes, so a stand-in that accepts just objects keeps those branches honest.
            return Resource.from_contents({"type": "object"}, default_specification=DRAFT7)
        else:
            path = SCHEMA_DIR / url.netloc / url.path.lstrip("/")
        if not path.is_file():
            raise NoSuchResource(ref=uri)  # never go to the network
        return Resource.from_contents(json.loads(path.read_text()), default_specification=DRAFT7)

    registry = Registry(retrieve=retrieve)

    def validate(doc: dict) -> None:
        core = {"Feature": "item-spec/json-schema/item.json",
                "Collection": "collection-spec/json-schema/collection.json",
                "Catalog": "catalog-spec/json-schema/catalog.json"}[doc["type"]]
        for uri in [f"https://schemas.stacspec.org/v1.0.0/{core}"] + doc.get("stac_extensions", []):
            schema = registry.get_or_retrieve(uri).value.contents
            jsonschema.Draft7Validator(schema, registry=registry).validate(doc)

    return validate


@pytest.mark.skipif(not SCHEMA_DIR.is_dir(), reason="offline STAC schemas not available")
def test_valid_against_stac_1_0_schemas_offline(demo):
    validate = _schema_registry()
    docs = [json.loads(p.read_text()) for p in sorted(demo["root"].rglob("*.json"))]
    assert {d["type"] for d in docs} == {"Catalog", "Collection", "Feature"}
    for doc in docs:
        validate(doc)
    # The validator really checks: a wrong projection field type must be rejected.
    import jsonschema

    broken = next(d for d in docs if d["type"] == "Feature")
    broken = {**broken, "properties": {**broken["properties"], "proj:epsg": "32632"}}
    with pytest.raises(jsonschema.ValidationError):
        validate(broken)


def test_odc_stac_loads_official_area(demo):
    odc_stac = pytest.importorskip("odc.stac")
    from pyproj import Transformer

    col = pystac.Catalog.from_file(str(demo["catalog_json"])).get_child(DEMO_S2_COLLECTION)
    items = list(col.get_items())
    to_geo = Transformer.from_crs(32632, 4326, always_xy=True)
    bbox = to_geo.transform_bounds(OFFICIAL["west"], OFFICIAL["south"], OFFICIAL["east"], OFFICIAL["north"])
    ds = odc_stac.load(items, bands=["B04", "B08"], bbox=bbox, crs="EPSG:32632", resolution=10)
    assert ds.sizes["time"] == len(S.S2_DATES)
    assert float(ds.x.min()) - 5 <= OFFICIAL["west"] and float(ds.x.max()) + 5 >= OFFICIAL["east"]
    assert float(ds.y.min()) - 5 <= OFFICIAL["south"] and float(ds.y.max()) + 5 >= OFFICIAL["north"]
    inner = ds.sel(x=slice(OFFICIAL["west"], OFFICIAL["east"]), y=slice(OFFICIAL["north"], OFFICIAL["south"]))
    assert (inner.B04 > 0).all() and (inner.B08 > 0).all()
    # Same grid alignment as the files: values match the known wheat pixel exactly.
    x, y = S.TILE1.pixel_center(*WHEAT)
    loaded = int(ds.B04.sel(x=x, y=y, time="2022-06-02").values.item())
    assert loaded == _pixel(demo["root"], D["0602"], "B04", WHEAT)


def test_odc_stac_mosaics_both_utm_zones(demo):
    odc_stac = pytest.importorskip("odc.stac")
    col = pystac.Catalog.from_file(str(demo["catalog_json"])).get_child(DEMO_S2_COLLECTION)
    items = [i for i in col.get_items() if i.datetime.date() == D["0602"]]
    ds = odc_stac.load(items, bands=["B04"], crs="EPSG:4326", resolution=0.002)
    b04 = ds.B04.isel(time=0)
    assert (b04.sel(longitude=slice(11.3, 11.4)) > 0).any()
    assert (b04.sel(longitude=slice(12.01, 12.06)) > 0).any()
