"""Secondary web services (/service_types, /services, XYZ tiles) through the real openeo client and a real
HTTP server: CRUD with per-user isolation, an NDVI tile checked against NDVI computed independently from
the demo COGs (rasterio + pyproj, nearest pixel), empty tiles, credits, the tile cache."""

from __future__ import annotations

import datetime as dt
import json
import math
import time
import warnings
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import openeo
import pytest
import rasterio
import rasterio.errors
import requests
from openeo.rest import OpenEoApiError
from pyproj import Transformer
from rasterio.io import MemoryFile

from backend.demo import DEMO_S2_COLLECTION
from backend.web_services.tiles import tile_bounds

AREA = {"west": 679720, "south": 5151080, "east": 680680, "north": 5151920, "crs": 32632}
INTERVAL = ["2022-06-01", "2022-07-01"]
TILE = (14, 8708, 5796)  # inside demo tile T1 (EPSG:32632)


@pytest.fixture
def connection(live_server) -> openeo.Connection:
    return openeo.connect(live_server.url).authenticate_basic(*live_server.new_user())


def _ndvi_service(connection, configuration=None):
    cube = connection.load_collection(DEMO_S2_COLLECTION, spatial_extent=AREA, temporal_extent=INTERVAL,
                                      bands=["B04", "B08"])
    return cube.ndvi().reduce_dimension("t", "mean").tiled_viewing_service(
        type="XYZ", configuration=configuration if configuration is not None else {"range": [-1, 1]})


def _tile_url(service, z, x, y) -> str:
    return service.describe_service()["url"].replace("{z}/{x}/{y}", f"{z}/{x}/{y}")


def _patch(connection, service, body: dict) -> None:
    """PATCH /services/{id} (the openeo client's update_service is not implemented)."""
    response = connection.patch(f"/services/{service.service_id}", json=body, expected_status=204)
    assert response.status_code == 204


def _decode(png: bytes) -> np.ndarray:
    """(4, H, W) uint8, read by GDAL's PNG driver (not by our encoder's code)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", rasterio.errors.NotGeoreferencedWarning)  # a map tile has no CRS
        with MemoryFile(png) as memory, memory.open() as image:
            return image.read()


def _reference_means(catalog: Path, z: int, x: int, y: int, bands: list[str]) -> dict[str, np.ndarray]:
    """Per band, the mean reflectance over INTERVAL at the tile's pixel centres: nearest 10 m pixel of the
    T1 COGs (nodata 0 → NaN, scale 0.0001), read with rasterio and reprojected with pyproj."""
    (west, _, _, north), res = tile_bounds(z, x, y)
    centres = (np.arange(256) + 0.5) * res
    mx, my = np.meshgrid(west + centres, north - centres)
    ux, uy = Transformer.from_crs(3857, 32632, always_xy=True).transform(mx, my)
    stacks: dict[str, list[np.ndarray]] = {name: [] for name in bands}
    start, end = (dt.date.fromisoformat(d) for d in INTERVAL)
    for item_json in sorted(catalog.glob(f"{DEMO_S2_COLLECTION}/*_T1_*/*.json")):
        when = dt.date.fromisoformat(json.loads(item_json.read_text())["properties"]["datetime"][:10])
        if not start <= when < end:
            continue
        for name in bands:
            with rasterio.open(item_json.parent / f"{name}.tif") as src:
                data = src.read(1).astype("float64")
                inverse = ~src.transform
                cols, rows = inverse.a * ux + inverse.b * uy + inverse.c, inverse.d * ux + inverse.e * uy + inverse.f
                values = data[np.floor(rows).astype(int), np.floor(cols).astype(int)]
                values[values == src.nodata] = np.nan
                stacks[name].append(values * 0.0001)
    assert all(stacks.values()), "no demo items in the interval"
    return {name: np.stack(stack) for name, stack in stacks.items()}


def _reference_ndvi(catalog: Path, z: int, x: int, y: int) -> np.ndarray:
    """Mean NDVI over INTERVAL (NDVI per date, then the mean ignoring missing dates)."""
    bands = _reference_means(catalog, z, x, y, ["B04", "B08"])
    with np.errstate(invalid="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN pixels (outside T1)
        return np.nanmean((bands["B08"] - bands["B04"]) / (bands["B08"] + bands["B04"]), axis=0)


def test_service_types_offer_xyz(connection):
    types = connection.list_service_types()
    assert set(types) == {"XYZ"}
    assert {"configuration", "process_parameters", "links"} <= set(types["XYZ"])
    assert "range" in types["XYZ"]["configuration"]


def test_create_describe_list_update_delete(connection, live_server):
    service = _ndvi_service(connection)
    described = service.describe_service()
    assert described["type"] == "XYZ" and described["enabled"] is True
    assert described["url"].startswith(f"{live_server.url}/services/{service.service_id}/tiles/")
    assert described["url"].endswith("/{z}/{x}/{y}")
    assert described["configuration"] == {"range": [-1, 1]}
    assert "loadcollection1" in described["process"]["process_graph"]
    assert len(service.service_id) == 32  # 128 random bits: the tile URL is unguessable
    assert [s["id"] for s in connection.list_services()] == [service.service_id]

    _patch(connection, service, {"title": "NDVI", "enabled": False})
    described = service.describe_service()
    assert described["title"] == "NDVI" and described["enabled"] is False
    assert requests.get(_tile_url(service, *TILE)).status_code == 404  # disabled: no tiles

    service.delete_service()
    assert connection.list_services() == []
    with pytest.raises(OpenEoApiError) as caught:
        service.describe_service()
    assert caught.value.http_status_code == 404 and caught.value.code == "ServiceNotFound"


def test_post_answers_201_with_location_and_identifier(connection, live_server):
    token = connection.auth.bearer
    body = {"type": "xyz", "process": {"process_graph": {"a": {"process_id": "add", "arguments": {"x": 1, "y": 2},
                                                               "result": True}}}}
    response = requests.post(f"{live_server.url}/services", json=body, headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 201
    service_id = response.headers["OpenEO-Identifier"]
    assert response.headers["Location"] == f"{live_server.url}/services/{service_id}"


def test_another_users_service_is_not_found(connection, live_server):
    service = _ndvi_service(connection)
    other = openeo.connect(live_server.url).authenticate_basic(*live_server.new_user())
    foreign = other.service(service.service_id)
    for call in (foreign.describe_service, foreign.delete_service, lambda: _patch(other, foreign, {"title": "x"}),
                 foreign.logs):
        with pytest.raises(OpenEoApiError) as caught:
            call()
        assert caught.value.http_status_code == 404 and caught.value.code == "ServiceNotFound"
    assert other.list_services() == []
    assert service.describe_service()["id"] == service.service_id  # untouched


@pytest.mark.parametrize("body, code", [
    ({"type": "WMTS", "process": {"process_graph": {}}}, "ServiceUnsupported"),
    ({"type": "XYZ"}, "ProcessGraphMissing"),
    ({"type": "XYZ", "process": {"process_graph": {"a": {"process_id": "add", "arguments": {}, "result": True}}},
      "configuration": {"colors": 3}}, "ServiceConfigUnsupported"),
    ({"type": "XYZ", "process": {"process_graph": {"a": {"process_id": "add", "arguments": {}, "result": True}}},
      "configuration": {"range": [1, 0]}}, "ServiceConfigInvalid"),
])
def test_bad_requests_are_openeo_errors(connection, live_server, body, code):
    response = requests.post(f"{live_server.url}/services", json=body,
                             headers={"Authorization": f"Bearer {connection.auth.bearer}"})
    assert response.status_code == 400 and response.json()["code"] == code


def test_unknown_service_tile_is_404(live_server):
    response = requests.get(f"{live_server.url}/services/{'0' * 32}/tiles/1/0/0")
    assert response.status_code == 404 and response.json()["code"] == "ServiceNotFound"


def test_ndvi_tile_matches_independent_ndvi(connection, live_server):
    service = _ndvi_service(connection)
    before = connection.describe_account()["budget"]
    response = requests.get(_tile_url(service, *TILE))  # no token: map clients send none
    assert response.status_code == 200 and response.headers["Content-Type"] == "image/png"
    image = _decode(response.content)
    assert image.shape == (4, 256, 256)
    expected = _reference_ndvi(live_server.services.settings.data_dir / "demo-catalog", *TILE)
    valid = ~np.isnan(expected)
    assert valid.mean() > 0.9  # the tile lies inside T1
    grey = np.round(np.clip((expected + 1) * 127.5, 0, 255))
    assert (image[3][valid] == 255).mean() > 0.99 and (image[3][~valid] == 0).all()
    close = np.abs(image[0][valid].astype(float) - grey[valid]) <= 1
    assert close.mean() > 0.98, close.mean()  # nearest-pixel edges may pick the neighbour
    assert (image[0] == image[1]).all() and (image[1] == image[2]).all()  # grey
    assert grey[valid].std() > 5  # the comparison is not trivial: NDVI varies over the tile

    after = connection.describe_account()["budget"]
    costs = service.describe_service()["costs"]
    assert costs > 0 and math.isclose(before - after, costs, abs_tol=1e-6)


def test_tile_outside_the_data_is_transparent(connection):
    service = _ndvi_service(connection)
    before = connection.describe_account()["budget"]
    response = requests.get(_tile_url(service, 14, 0, 0))
    assert response.status_code == 200
    image = _decode(response.content)
    assert image.shape == (4, 256, 256) and (image[3] == 0).all()
    assert connection.describe_account()["budget"] == before  # nothing rendered, nothing charged


def test_cache_hit_is_identical_and_free_and_patch_invalidates(connection, live_server):
    service = _ndvi_service(connection)
    url = _tile_url(service, *TILE)
    started = time.perf_counter()
    first = requests.get(url).content
    rendered = time.perf_counter() - started
    budget = connection.describe_account()["budget"]
    started = time.perf_counter()
    second = requests.get(url).content
    cached = time.perf_counter() - started
    assert second == first and cached < rendered / 5
    assert requests.get(url).headers["X-Tile-Cache"] == "hit"
    assert connection.describe_account()["budget"] == budget  # a cached tile costs nothing

    _patch(connection, service, {"configuration": {"range": [0, 1]}})  # a new stretch: the cached tile is stale
    third = requests.get(url).content
    assert third != first
    assert connection.describe_account()["budget"] < budget


def test_overlapping_tile_requests(connection):
    """Threads render different tiles of one service at once: each gets its own tile (per-run grid)."""
    service = _ndvi_service(connection)
    tiles = [(14, 8708, 5796), (14, 8709, 5796), (14, 0, 0), (14, 8708, 5797)]
    with ThreadPoolExecutor(4) as pool:
        images = list(pool.map(lambda t: _decode(requests.get(_tile_url(service, *t)).content), tiles))
    alone = [_decode(requests.get(_tile_url(service, *t)).content) for t in tiles]  # cached now, but equal
    for together, single in zip(images, alone):
        assert (together == single).all()
    assert (images[2][3] == 0).all() and (images[0][3] == 255).mean() > 0.9
    assert not (images[0] == images[1]).all()


def test_three_bands_make_an_rgb_tile(connection, live_server):
    cube = connection.load_collection(DEMO_S2_COLLECTION, spatial_extent=AREA, temporal_extent=INTERVAL,
                                      bands=["B04", "B03", "B02"])
    service = cube.reduce_dimension("t", "mean").tiled_viewing_service(type="XYZ", configuration={"range": [0, 0.2]})
    image = _decode(requests.get(_tile_url(service, *TILE)).content)
    means = _reference_means(live_server.services.settings.data_dir / "demo-catalog", *TILE, ["B04", "B03", "B02"])
    for channel, name in enumerate(["B04", "B03", "B02"]):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            expected = np.round(np.clip(np.nanmean(means[name], axis=0) / 0.2 * 255, 0, 255))
        valid = ~np.isnan(expected)
        close = np.abs(image[channel][valid].astype(float) - expected[valid]) <= 1
        assert close.mean() > 0.98, (name, close.mean())
    assert not (image[0] == image[2]).all()  # colour, not grey


def test_tiles_that_fail_are_in_the_service_logs_with_paging(connection, live_server):
    cube = connection.load_collection(DEMO_S2_COLLECTION, spatial_extent=AREA, temporal_extent=INTERVAL,
                                      bands=["B04", "B08"])
    service = cube.reduce_dimension("t", "mean").tiled_viewing_service(type="XYZ")  # 2 bands: no map tile
    assert service.logs() == []
    z, x, y = TILE
    for dx in range(3):
        response = requests.get(_tile_url(service, z, x + dx, y))
        assert response.status_code == 400 and "one band (grey) or three (RGB)" in response.json()["message"]
    logs = service.logs()
    assert [entry["level"] for entry in logs] == ["error"] * 3 and [entry["id"] for entry in logs] == ["1", "2", "3"]
    assert logs[0]["message"].startswith(f"Tile {z}/{x}/{y}: ") and "reduce the other dimensions" in logs[0]["message"]
    assert logs[0]["code"] == "BadRequest" and logs[2]["data"] == {"tile": [z, x + 2, y]}
    first = connection.get(f"/services/{service.service_id}/logs", params={"limit": 2}).json()
    assert [entry["id"] for entry in first["logs"]] == ["1", "2"] and first["level"] == "debug"
    after = connection.get(first["links"][0]["href"]).json()  # the next link, as the client follows it
    assert [entry["id"] for entry in after["logs"]] == ["3"] and after["links"] == []
    assert connection.get(f"/services/{service.service_id}/logs", params={"level": "warning"}).json()["logs"] != []
    other = openeo.connect(live_server.url).authenticate_basic(*live_server.new_user())
    with pytest.raises(OpenEoApiError) as caught:
        other.get(f"/services/{service.service_id}/logs", expected_status=200)
    assert caught.value.http_status_code == 404 and caught.value.code == "ServiceNotFound"
