"""Batch-job result assets: STAC asset fields, quicklooks and collection extents of real writer output."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from urllib.parse import urlparse

import numpy as np
import pandas as pd
import pystac
import pytest
import rasterio
import rioxarray  # noqa: F401  (registers .rio)
import xarray as xr
from pyproj import Transformer

from backend.jobs.assets import EXTENSIONS, collection_extent, describe_asset, make_quicklook
from backend.processing.writers import write_result

pytestmark = pytest.mark.filterwarnings("ignore::PendingDeprecationWarning",  # rioxarray on affine 3
                                        "ignore::rasterio.errors.NotGeoreferencedWarning")

SCHEMA_DIR = Path(__file__).resolve().parents[3] / "shared" / "conformance-assets" / "stac-schemas"
CRS = "EPSG:32632"
ORIGIN_X, ORIGIN_Y, RES = 500000.0, 5000000.0, 10.0
DATES = ["2022-06-01", "2022-06-02", "2022-06-03"]
BANDS = ["B04", "B08"]
GTIFF = "image/tiff; application=geotiff; profile=cloud-optimized"


def make_cube(width=40, height=30, dates=DATES, bands=BANDS, crs=CRS, origin=(ORIGIN_X, ORIGIN_Y)) -> xr.DataArray:
    """(t, bands, y, x) float32, a smooth ramp with NaN blocks aligned to 4 x 4 pixels."""
    t, b, y, x = np.meshgrid(np.arange(len(dates)), np.arange(len(bands)), np.arange(height), np.arange(width),
                             indexing="ij")
    data = (1000 * t + 100 * b + y + x / 100).astype("float32")
    data[0, 0, :4, :4] = np.nan          # top-left block of the first band
    if len(bands) > 1:
        data[0, 1, 8:12, 16:20] = np.nan  # a block of the second band
    cube = xr.DataArray(data, dims=("t", "bands", "y", "x"), coords={
        "t": pd.to_datetime(dates), "bands": list(bands),
        "y": origin[1] - RES * (np.arange(height) + 0.5), "x": origin[0] + RES * (np.arange(width) + 0.5)})
    return cube.rio.write_crs(crs).chunk({"x": 16, "y": 16})


def write(cube, fmt: str, directory: Path, options: dict | None = None) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    return write_result(cube, fmt, options or {}, directory).path


@pytest.fixture
def tiff(tmp_path) -> Path:
    return write(make_cube(), "GTiff", tmp_path / "gtiff")


# --- describe_asset ----------------------------------------------------------------------------

def test_geotiff_asset_fields(tiff):
    asset = describe_asset(tiff, GTIFF, ["data"])
    assert asset["type"] == GTIFF and asset["roles"] == ["data"] and asset["title"] == "result.tif"
    assert "href" not in asset
    assert asset["file:size"] == tiff.stat().st_size
    assert asset["file:checksum"] == "1220" + hashlib.sha256(tiff.read_bytes()).hexdigest()
    assert asset["proj:epsg"] == 32632 and "proj:wkt2" not in asset
    assert asset["proj:shape"] == [30, 40]
    assert asset["proj:transform"] == [RES, 0.0, ORIGIN_X, 0.0, -RES, ORIGIN_Y]
    assert asset["proj:bbox"] == [ORIGIN_X, ORIGIN_Y - 30 * RES, ORIGIN_X + 40 * RES, ORIGIN_Y]
    assert asset["raster:bands"] == [{"data_type": "float32", "nodata": "nan", "sampling": "area"}] * 6
    assert [b["name"] for b in asset["eo:bands"]] == [f"{d}/{b}" for d in DATES for b in BANDS]
    assert (asset["start_datetime"], asset["end_datetime"]) == ("2022-06-01T00:00:00Z", "2022-06-03T00:00:00Z")
    json.dumps(asset, allow_nan=False)  # no NaN leaks into the JSON


def test_crs_without_epsg_code_gives_wkt2(tmp_path):
    crs = "+proj=aeqd +lat_0=47 +lon_0=11 +datum=WGS84 +units=m"
    path = write(make_cube(crs=crs, origin=(0.0, 0.0)), "GTiff", tmp_path)
    asset = describe_asset(path, GTIFF, ["data"])
    assert asset["proj:epsg"] is None
    assert asset["proj:wkt2"].startswith("PROJCRS[")
    assert rasterio.crs.CRS.from_wkt(asset["proj:wkt2"]) == rasterio.crs.CRS.from_string(crs)


def test_single_date_cube(tmp_path):
    path = write(make_cube(dates=DATES[:1], bands=["B04"]), "GTiff", tmp_path)  # t and bands dropped/kept
    asset = describe_asset(path, GTIFF, ["data"])
    assert len(asset["raster:bands"]) == 1 and asset["eo:bands"] == [{"name": "B04"}]
    # the writer drops a single date from the dimensions but keeps it as a band tag: the item is dated by it
    assert (asset["start_datetime"], asset["end_datetime"]) == ("2022-06-01T00:00:00Z", "2022-06-01T00:00:00Z")


def test_netcdf_asset_has_grid_but_no_bands(tmp_path):
    path = write(make_cube(), "netCDF", tmp_path)
    asset = describe_asset(path, "application/x-netcdf", ["data"])
    assert asset["file:checksum"] == "1220" + hashlib.sha256(path.read_bytes()).hexdigest()
    assert asset["proj:epsg"] == 32632 and asset["proj:shape"] == [30, 40]
    assert asset["proj:transform"] == [RES, 0.0, ORIGIN_X, 0.0, -RES, ORIGIN_Y]
    assert "raster:bands" not in asset


def test_png_result_has_bands_but_no_projection(tmp_path):
    cube = make_cube(dates=DATES[:1], bands=["B04"])
    path = write(cube, "PNG", tmp_path)
    asset = describe_asset(path, "image/png", ["data"])
    assert not any(key.startswith("proj:") for key in asset)
    assert [b["data_type"] for b in asset["raster:bands"]] == ["uint8", "uint8"]


@pytest.mark.parametrize("content", [b'{"type": "FeatureCollection", "features": []}',
                                     b"x,y,value\n0,0,1\n1,0,2\n0,1,3\n1,1,4\n",  # GDAL's XYZ grid driver
                                     b""])
def test_non_raster_files_get_only_file_fields(tmp_path, content):
    path = tmp_path / "result.dat"
    path.write_bytes(content)
    asset = describe_asset(path, "application/octet-stream", ["data"])
    assert set(asset) == {"type", "roles", "title", "file:size", "file:checksum"}
    assert asset["file:checksum"] == "1220" + hashlib.sha256(content).hexdigest()


def test_truncated_geotiff_does_not_raise(tiff, tmp_path):
    broken = tmp_path / "broken.tif"
    broken.write_bytes(tiff.read_bytes()[:300])
    asset = describe_asset(broken, GTIFF, ["data"])
    assert asset["file:size"] == 300 and "raster:bands" not in asset


def test_checksum_streams_files_larger_than_a_chunk(tmp_path):
    path = tmp_path / "big.bin"
    content = np.random.default_rng(0).bytes(3 * (1 << 20) + 17)
    path.write_bytes(content)
    assert describe_asset(path, "application/octet-stream", [])["file:checksum"] == (
        "1220" + hashlib.sha256(content).hexdigest())


# --- STAC schemas (offline) --------------------------------------------------------------------

def _validator():
    jsonschema = pytest.importorskip("jsonschema")
    from referencing import Registry, Resource
    from referencing.exceptions import NoSuchResource
    from referencing.jsonschema import DRAFT7

    geojson_dir = Path(pystac.__file__).parent / "validation" / "jsonschemas" / "geojson"

    def retrieve(uri: str):
        url = urlparse(uri)
        if url.netloc == "geojson.org":  # not in the offline bundle; pystac ships copies
            path = geojson_dir / Path(url.path).name
        else:
            path = SCHEMA_DIR / url.netloc / url.path.lstrip("/")
        if not path.is_file():
            raise NoSuchResource(ref=uri)  # never go to the network
        return Resource.from_contents(json.loads(path.read_text()), default_specification=DRAFT7)

    registry = Registry(retrieve=retrieve)

    def validate(doc: dict, core: str) -> None:
        for uri in [f"https://schemas.stacspec.org/v1.0.0/{core}"] + doc.get("stac_extensions", []):
            schema = registry.get_or_retrieve(uri).value.contents
            jsonschema.Draft7Validator(schema, registry=registry).validate(doc)

    return validate


@pytest.mark.skipif(not SCHEMA_DIR.is_dir(), reason="offline STAC schemas absent (../shared/conformance-assets)")
def test_assets_and_extent_valid_against_stac_schemas(tiff, tmp_path):
    import jsonschema

    validate = _validator()
    other = write(make_cube(crs="+proj=aeqd +lat_0=47 +lon_0=11 +datum=WGS84 +units=m", origin=(0.0, 0.0)),
                  "GTiff", tmp_path / "aeqd")
    text = tmp_path / "result.json"
    text.write_text("{}")
    assets = {"result.tif": describe_asset(tiff, GTIFF, ["data"]),
              "aeqd.tif": describe_asset(other, GTIFF, ["data"]),
              "result.json": describe_asset(text, "application/json", ["data"])}
    assets = {name: {"href": f"./{name}", **fields} for name, fields in assets.items()}
    extent = collection_extent(assets)
    west, south, east, north = extent["spatial"]["bbox"][0]
    item = {"type": "Feature", "stac_version": "1.0.0", "stac_extensions": EXTENSIONS, "id": "job-1",
            "geometry": {"type": "Polygon", "coordinates": [[[west, south], [east, south], [east, north],
                                                             [west, north], [west, south]]]},
            "bbox": [west, south, east, north],
            "properties": {"datetime": None, "start_datetime": extent["temporal"]["interval"][0][0],
                           "end_datetime": extent["temporal"]["interval"][0][1]},
            "links": [], "assets": assets}
    validate(item, "item-spec/json-schema/item.json")
    collection = {"type": "Collection", "stac_version": "1.0.0", "id": "job-1", "description": "results",
                  "license": "proprietary", "extent": extent, "links": []}
    validate(collection, "collection-spec/json-schema/collection.json")

    # the validation has teeth: a wrong type of a proj:/raster: field is refused
    for key, bad in [("proj:epsg", "32632"), ("raster:bands", [{"data_type": "float32", "nodata": "NaN"}])]:
        broken = {**item, "assets": {"result.tif": {**assets["result.tif"], key: bad}}}
        with pytest.raises(jsonschema.ValidationError):
            validate(broken, "item-spec/json-schema/item.json")


# --- make_quicklook ----------------------------------------------------------------------------

def _read_png(path: Path) -> np.ndarray:
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with rasterio.open(path) as ds:
        assert ds.driver == "PNG" and set(ds.dtypes) == {"uint8"}
        return ds.read()


def _expected_bytes(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(scaled bytes, valid) with the 2nd-98th percentile stretch over all shown bands."""
    valid = np.isfinite(values).all(axis=0)
    low, high = np.percentile(values[:, valid].astype(np.float64), [2, 98])
    scaled = np.rint(np.clip((values.astype(np.float64) - low) / (high - low), 0, 1) * 255)
    return np.where(valid, scaled, 0).astype(np.uint8), valid


def test_quicklook_rgb_full_size(tiff, tmp_path):
    out = make_quicklook(tiff, tmp_path / "ql.png")
    assert out == tmp_path / "ql.png"
    image = _read_png(out)
    assert image.shape == (4, 30, 40)  # R, G, B, alpha; small rasters are not upscaled
    expected, valid = _expected_bytes(make_cube().values.reshape(6, 30, 40)[:3])
    np.testing.assert_array_equal(image[3], np.where(valid, 255, 0))
    assert (image[3, :4, :4] == 0).all() and (image[3, 8:12, 16:20] == 0).all()
    np.testing.assert_array_equal(image[:3], expected)


def test_quicklook_grey_and_decimated(tmp_path):
    path = write(make_cube(dates=DATES[:1], bands=["B04"]), "GTiff", tmp_path)
    image = _read_png(make_quicklook(path, tmp_path / "ql.png", max_size=20))
    assert image.shape == (2, 15, 20)  # grey + alpha, longer side = max_size, aspect kept
    # NaN blocks are aligned to 4 px, so every pixel of the 2x decimated image is all-NaN or all-valid
    assert (image[1, :2, :2] == 0).all() and image[1].sum() == 255 * (15 * 20 - 4)
    grey = image[0][image[1] == 255].astype(int)
    assert grey.min() == 0 and grey.max() == 255


def test_quicklook_large_cog_uses_size_limit(tmp_path):
    cube = make_cube(width=1300, height=900, dates=DATES[:1], bands=["B04", "B08", "B11"])
    path = write(cube, "GTiff", tmp_path, {"blocksize": 256})
    with rasterio.open(path) as ds:
        assert ds.overviews(1)  # the COG has overviews to read from
    image = _read_png(make_quicklook(path, tmp_path / "ql.png"))
    assert image.shape == (4, 354, 512)


def test_quicklook_none_for_non_rasters(tmp_path):
    text = tmp_path / "result.json"
    text.write_text("{}")
    assert make_quicklook(text, tmp_path / "a.png") is None
    assert make_quicklook(write(make_cube(), "netCDF", tmp_path / "nc"), tmp_path / "b.png") is None
    assert not (tmp_path / "a.png").exists() and not (tmp_path / "b.png").exists()


# --- collection_extent -------------------------------------------------------------------------

def test_extent_from_one_asset(tiff):
    extent = collection_extent({"result.tif": describe_asset(tiff, GTIFF, ["data"])})
    expected = Transformer.from_crs(CRS, "EPSG:4326", always_xy=True).transform_bounds(
        ORIGIN_X, ORIGIN_Y - 300, ORIGIN_X + 400, ORIGIN_Y, densify_pts=21)
    np.testing.assert_allclose(extent["spatial"]["bbox"][0], expected, atol=1e-9)
    assert extent["temporal"]["interval"] == [["2022-06-01T00:00:00Z", "2022-06-03T00:00:00Z"]]


def test_extent_union_of_assets(tiff, tmp_path):
    later = write(make_cube(dates=["2022-07-01", "2022-07-05"], origin=(ORIGIN_X + 1000, ORIGIN_Y - 1000)),
                  "GTiff", tmp_path / "later")
    a, b = describe_asset(tiff, GTIFF, ["data"]), describe_asset(later, GTIFF, ["data"])
    extent = collection_extent({"a": a, "b": b, "text": {"type": "application/json", "file:size": 2}})
    box_a, box_b = (collection_extent({"x": asset})["spatial"]["bbox"][0] for asset in (a, b))
    assert extent["spatial"]["bbox"] == [[box_a[0], box_b[1], box_b[2], box_a[3]]]
    assert extent["temporal"]["interval"] == [["2022-06-01T00:00:00Z", "2022-07-05T00:00:00Z"]]


def test_extent_fallbacks():
    assert collection_extent({"t": {"type": "text/csv"}}, fallback_bbox=(5, 45, 6, 46)) == {
        "spatial": {"bbox": [[5, 45, 6, 46]]}, "temporal": {"interval": [[None, None]]}}
    assert collection_extent({})["spatial"]["bbox"] == [[-180.0, -90.0, 180.0, 90.0]]
    # assets described elsewhere: dates from eo:bands names "<date>/<band>"
    named = {"eo:bands": [{"name": "2021-03-04/B02"}, {"name": "2021-01-02T10:00:00Z/B02"}, {"name": "B03"}]}
    assert collection_extent({"x": named})["temporal"]["interval"] == [
        ["2021-01-02T10:00:00Z", "2021-03-04T00:00:00Z"]]
