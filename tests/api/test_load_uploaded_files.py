"""load_uploaded_files through the real Python client: a GeoTIFF, a netCDF and GeoJSON geometries uploaded
to /files, read by a synchronous process graph of their owner, and nobody else's."""

from __future__ import annotations

import json

import numpy as np
import openeo
import pytest
import rasterio
import xarray as xr
from openeo.rest import OpenEoApiError
from rasterio.transform import from_origin

WEST, NORTH, PIXEL = 500_000, 5_600_000, 10


def _client(server) -> openeo.Connection:
    return openeo.connect(server.url).authenticate_basic(*server.new_user())


def _geotiff(path, data: np.ndarray) -> None:
    with rasterio.open(path, "w", driver="GTiff", width=data.shape[2], height=data.shape[1], count=data.shape[0],
                       dtype=data.dtype, crs="EPSG:32631", transform=from_origin(WEST, NORTH, PIXEL, PIXEL),
                       nodata=0) as out:
        out.write(data)
        out.set_band_description(1, "B04")
        out.set_band_description(2, "B08")


def _load(path, fmt: str) -> dict:
    return {"process_id": "load_uploaded_files", "arguments": {"paths": [path], "format": fmt}}


def _save(node: str, fmt: str = "GTiff") -> dict:
    return {"process_id": "save_result", "arguments": {"data": {"from_node": node}, "format": fmt}, "result": True}


def _band_difference(source: str) -> dict:
    reducer = {"b08": {"process_id": "array_element", "arguments": {"data": {"from_parameter": "data"}, "label": "B08"}},
               "b04": {"process_id": "array_element", "arguments": {"data": {"from_parameter": "data"}, "label": "B04"}},
               "diff": {"process_id": "subtract", "arguments": {"x": {"from_node": "b08"}, "y": {"from_node": "b04"}},
                        "result": True}}
    return {"process_id": "reduce_dimension", "arguments": {"data": {"from_node": source}, "dimension": "bands",
                                                            "reducer": {"process_graph": reducer}}}


@pytest.fixture
def scene(live_server, tmp_path):
    """A user with a two-band uint16 GeoTIFF (B04, B08; nodata 0) at in/scene.tif, and its pixels."""
    con = _client(live_server)
    data = (np.arange(2 * 30 * 40, dtype="uint16").reshape(2, 30, 40) % 5000) + 1
    data[:, 0, 0] = 0
    source = tmp_path / "scene.tif"
    _geotiff(source, data)
    con.upload_file(source, target="in/scene.tif")
    return con, data


def test_geotiff_band_math_reads_the_uploaded_pixels(scene, tmp_path):
    con, data = scene
    for path in ("in/scene.tif", "/in/scene.tif", "./in/scene.tif"):  # equivalent, as the spec says
        graph = {"load": _load(path, "gtiff"), "diff": _band_difference("load"), "save": _save("diff")}
        target = con.download(graph, tmp_path / "diff.tif") or tmp_path / "diff.tif"
        with rasterio.open(target) as result:
            values = result.read(1)
            assert (result.crs.to_epsg(), result.transform) == (32631, from_origin(WEST, NORTH, PIXEL, PIXEL))
        expected = data[1].astype("float32") - data[0].astype("float32")
        assert np.isnan(values[0, 0])  # nodata stays nodata
        np.testing.assert_array_equal(values.ravel()[1:], expected.ravel()[1:])


@pytest.mark.parametrize("file_format", ["NETCDF4", "NETCDF3_64BIT"])  # HDF5-based and classic: two engines
def test_netcdf_with_time_is_read_as_bands_over_time(live_server, tmp_path, file_format):
    con = _client(live_server)
    values = np.random.default_rng(1).uniform(0, 1, (3, 20, 25)).astype("float32")
    x = WEST + PIXEL / 2 + PIXEL * np.arange(25)
    y = NORTH - PIXEL / 2 - PIXEL * np.arange(20)
    dataset = xr.Dataset({"NDVI": (("t", "y", "x"), values)},
                         coords={"t": np.array(["2024-05-01", "2024-05-11", "2024-05-21"], dtype="datetime64[ns]"),
                                 "y": y, "x": x})
    dataset.rio.write_crs("EPSG:32631", inplace=True)
    dataset.to_netcdf(tmp_path / "ndvi.nc", format=file_format)
    con.upload_file(tmp_path / "ndvi.nc", target="series/ndvi.nc")

    mean = {"process_id": "reduce_dimension", "arguments": {
        "data": {"from_node": "load"}, "dimension": "t", "reducer": {"process_graph": {"m": {
            "process_id": "mean", "arguments": {"data": {"from_parameter": "data"}}, "result": True}}}}}
    con.download({"load": _load("series/ndvi.nc", "netCDF"), "mean": mean, "save": _save("mean")},
                 tmp_path / "mean.tif")
    with rasterio.open(tmp_path / "mean.tif") as result:
        assert (result.count, result.crs.to_epsg()) == (1, 32631)
        assert result.transform == from_origin(WEST, NORTH, PIXEL, PIXEL)
        np.testing.assert_allclose(result.read(1), values.mean(axis=0), rtol=1e-6)


def test_a_file_that_is_no_netcdf_is_refused_as_netcdf(scene, tmp_path):
    con, _ = scene  # in/scene.tif: a GeoTIFF, which GDAL (xarray's guess) would read
    with pytest.raises(OpenEoApiError) as caught:
        con.download({"load": _load("in/scene.tif", "netCDF"), "save": _save("load")}, tmp_path / "out.tif")
    assert (caught.value.http_status_code, caught.value.code) == (400, "FormatUnsuitable")
    assert "'in/scene.tif' is not a netCDF file" in caught.value.message


def test_geojson_geometries_from_the_workspace(scene, tmp_path):
    con, data = scene
    square = [[WEST + 100, NORTH - 200], [WEST + 200, NORTH - 200], [WEST + 200, NORTH - 100],
              [WEST + 100, NORTH - 100], [WEST + 100, NORTH - 200]]  # pixels x 10..19, y 10..19
    fields = {"type": "FeatureCollection", "features": [
        {"type": "Feature", "properties": {"name": "f1"}, "geometry": {"type": "Polygon", "coordinates": [square]}}]}
    # GeoJSON is WGS 84: write the square's corners in lon/lat.
    from pyproj import Transformer

    to_wgs84 = Transformer.from_crs(32631, 4326, always_xy=True)
    fields["features"][0]["geometry"]["coordinates"] = [[list(to_wgs84.transform(*xy)) for xy in square]]
    (tmp_path / "fields.geojson").write_text(json.dumps(fields))
    con.upload_file(tmp_path / "fields.geojson", target="vectors/fields.geojson")

    graph = {"load": _load("in/scene.tif", "GTiff"), "fields": _load("vectors/fields.geojson", "GeoJSON"),
             "agg": {"process_id": "aggregate_spatial", "arguments": {
                 "data": {"from_node": "load"}, "geometries": {"from_node": "fields"},
                 "reducer": {"process_graph": {"m": {"process_id": "mean", "arguments": {
                     "data": {"from_parameter": "data"}}, "result": True}}}}},
             "save": _save("agg", "JSON")}
    con.download(graph, tmp_path / "agg.json")
    feature = json.loads((tmp_path / "agg.json").read_text())["features"][0]
    assert feature["properties"]["name"] == "f1"  # the uploaded feature's properties are kept
    # the mean of each band over pixels x 10..19, y 10..19 (the reprojected corners stay inside them)
    assert (feature["properties"]["B04"], feature["properties"]["B08"]) == (data[0, 10:20, 10:20].mean(),
                                                                            data[1, 10:20, 10:20].mean())


def test_only_the_callers_own_files_and_no_way_out(scene, live_server, tmp_path):
    owner, _ = scene
    other = _client(live_server)
    graph = {"load": _load("in/scene.tif", "GTiff"), "save": _save("load")}
    with pytest.raises(OpenEoApiError) as caught:
        other.download(graph, tmp_path / "stolen.tif")
    assert (caught.value.http_status_code, caught.value.code) == (404, "FileNotFound")
    owner_id = owner.describe_account()["user_id"]
    for escape in ("../" + owner_id + "/in/scene.tif", "in/../../" + owner_id + "/in/scene.tif", "in"):
        with pytest.raises(OpenEoApiError) as caught:
            other.download({**graph, "load": _load(escape, "GTiff")}, tmp_path / "stolen.tif")
        assert caught.value.code in ("FileNotFound", "FileOperationUnsupported"), caught.value.message
    assert not (tmp_path / "stolen.tif").exists()


def test_validation_checks_format_options_and_paths(live_server):
    con = _client(live_server)
    graph = {"load": _load("a.tif", "GTiff"), "save": _save("load")}
    assert con.validate_process_graph(graph) == []
    wrong = [({"format": "PNG"}, "FormatUnsupported"), ({"options": {"x": 1}}, "ProcessParameterInvalid"),
             ({"paths": ["a.tif", "b.tif"]}, "ProcessParameterInvalid")]
    for change, code in wrong:
        node = {**graph["load"], "arguments": {**graph["load"]["arguments"], **change}}
        found = con.validate_process_graph({**graph, "load": node})
        assert [error["code"] for error in found] == [code], found


def test_batch_job_reads_the_uploaded_geotiff_on_the_cluster(scene, job_runner, tmp_path):
    from tests.e2e.test_batch_jobs import wait_for

    con, data = scene
    graph = {"load": _load("in/scene.tif", "GTiff"), "diff": _band_difference("load"), "save": _save("diff")}
    job = con.create_job(graph, title="uploaded file")
    job.start()
    metadata = wait_for(job, {"finished", "error"}, timeout=180)
    assert metadata["status"] == "finished", [entry["message"] for entry in job.logs()]
    downloaded = job.get_results().download_files(tmp_path / "job")
    tif = next(path for path in downloaded if path.suffix == ".tif")
    with rasterio.open(tif) as result:
        values = result.read(1)
    expected = data[1].astype("float32") - data[0].astype("float32")
    np.testing.assert_array_equal(values.ravel()[1:], expected.ravel()[1:])
