"""Provenance of results through the real openeo client: a batch job's results STAC carries the STAC
processing extension (the graph, software versions, input items, start and end) and validates against its
schema; GeoTIFF tags and netCDF attributes of synchronous results carry the same. The input items are
checked against the demo catalog read independently (pystac, pyproj, shapely)."""

from __future__ import annotations

import json
from datetime import datetime

import jsonschema
import netCDF4
import numpy
import openeo
import pystac
import pytest
import rasterio
import shapely
from pyproj import Transformer

from backend.demo import DEMO_S2_COLLECTION
from backend.processing.provenance import PROCESSING_EXTENSION
from tests.api.test_collections import SCHEMAS
from tests.e2e.test_sync_processing import AREA

JUNE = ["2022-06-01", "2022-07-01"]


@pytest.fixture
def connection(live_server):
    name, password = live_server.new_user()
    return openeo.connect(live_server.url).authenticate_basic(name, password)


def ndvi_composite(connection):
    cube = connection.load_collection(DEMO_S2_COLLECTION, spatial_extent=AREA, temporal_extent=JUNE,
                                      bands=["B04", "B08"])
    return cube.ndvi(nir="B08", red="B04").reduce_dimension("t", "mean")


def expected_items(demo_catalog_dir) -> set[str]:
    """The demo S2 items of June 2022 whose footprint meets AREA, read from the catalog on disk."""
    to_lonlat = Transformer.from_crs(AREA["crs"], 4326, always_xy=True)
    west, south = to_lonlat.transform(AREA["west"], AREA["south"])
    east, north = to_lonlat.transform(AREA["east"], AREA["north"])
    area = shapely.box(west, south, east, north)
    catalog = pystac.Catalog.from_file(str(demo_catalog_dir / "catalog.json"))
    found = set()
    for item in catalog.get_all_items():
        if item.collection_id != DEMO_S2_COLLECTION or not shapely.box(*item.bbox).intersects(area):
            continue
        if datetime(2022, 6, 1) <= item.datetime.replace(tzinfo=None) < datetime(2022, 7, 1):
            found.add(item.id)
    assert found, "the demo catalog has S2 items in June over AREA"
    return found


def graph_sent(cube, fmt: str) -> dict:
    return cube.save_result(fmt).flat_graph()


def test_geotiff_and_netcdf_of_a_sync_result_carry_graph_software_and_inputs(connection, demo_catalog_dir, tmp_path):
    cube = ndvi_composite(connection)
    cube.download(tmp_path / "ndvi.tif", format="GTiff")
    with rasterio.open(tmp_path / "ndvi.tif") as raster:
        tags = raster.tags()
    assert json.loads(tags["openeo_process_graph"]) == {"process_graph": graph_sent(cube, "GTiff")}
    software = json.loads(tags["openeo_software"])
    assert software["numpy"] == numpy.__version__ and software["GDAL"] == rasterio.__gdal_version__
    assert "openeo-backend-federation" in software
    inputs = json.loads(tags["openeo_inputs"])
    assert {entry["collection"] for entry in inputs} == {DEMO_S2_COLLECTION}
    assert {entry["id"] for entry in inputs} == expected_items(demo_catalog_dir)
    assert all("href" not in entry for entry in inputs)  # the catalog on the server's disk is no address
    datetime.strptime(tags["openeo_started"], "%Y-%m-%dT%H:%M:%SZ")

    cube.download(tmp_path / "ndvi.nc", format="netCDF")
    with netCDF4.Dataset(tmp_path / "ndvi.nc") as dataset:
        attributes = {name: dataset.getncattr(name) for name in dataset.ncattrs()}
    assert json.loads(attributes["openeo_process_graph"]) == {"process_graph": graph_sent(cube, "netCDF")}
    assert json.loads(attributes["openeo_inputs"]) == inputs
    assert attributes["Conventions"] == "CF-1.9"  # the CF attributes are kept


@pytest.mark.usefixtures("job_runner")
def test_batch_results_carry_the_stac_processing_extension(connection, demo_catalog_dir, tmp_path):
    cube = ndvi_composite(connection)
    job = cube.create_job(out_format="GTiff", title="with provenance")
    job.start_and_wait(max_poll_interval=0.5, print=lambda *_: None)
    results = job.get_results()
    document = results.get_metadata()
    assert PROCESSING_EXTENSION in document["stac_extensions"]
    processor = document["providers"][0]
    assert processor["roles"] == ["processor"]
    assert processor["processing:expression"]["format"] == "openeo"
    assert processor["processing:expression"]["expression"] == {"process_graph": graph_sent(cube, "GTiff")}
    assert processor["processing:software"]["numpy"] == numpy.__version__
    assert {entry["id"] for entry in processor["openeo:inputs"]} == expected_items(demo_catalog_dir)
    started = datetime.strptime(processor["openeo:started"], "%Y-%m-%dT%H:%M:%SZ")
    ended = datetime.strptime(processor["processing:datetime"], "%Y-%m-%dT%H:%M:%SZ")
    assert started <= ended
    assert f"{len(processor['openeo:inputs'])} input item(s) of {DEMO_S2_COLLECTION}" in processor["processing:lineage"]

    item_link = next(link["href"] for link in document["links"] if link["rel"] == "item")
    item = connection.session.get(item_link).json()  # signed: no token needed
    assert item["properties"]["processing:software"] == processor["processing:software"]
    assert PROCESSING_EXTENSION in item["stac_extensions"]
    tif = next(path for path in results.download_files(tmp_path / "job") if path.suffix == ".tif")
    with rasterio.open(tif) as raster:
        assert json.loads(raster.tags()["openeo_inputs"]) == processor["openeo:inputs"]

    if SCHEMAS.is_dir():  # the offline STAC schemas of ../shared
        from stac_validator.validate import StacValidate

        from conformance import stac_offline

        stac_offline.install(SCHEMAS)
        for stac in (document, item):
            validator = StacValidate()  # core (it does not apply a Collection's extension schemas)
            assert validator.validate_dict(stac), validator.message
        schema_path = SCHEMAS / "stac-extensions.github.io" / "processing" / "v1.2.0" / "schema.json"
        processing = jsonschema.Draft7Validator(json.loads(schema_path.read_text()))
        for stac in (document, item):
            assert list(processing.iter_errors(stac)) == []
        broken = {**document, "providers": [{**processor, "processing:software": "numpy"}]}
        assert list(processing.iter_errors(broken))  # the processing schema is really applied
