"""The real openeo Python client against a real HTTP server (embedded default with demo data)."""

from __future__ import annotations

import openeo
import pytest
from openeo.rest import OpenEoApiError

from backend.demo import DEMO_DEM_COLLECTION, DEMO_S2_COLLECTION


@pytest.fixture
def connection(live_server):
    name, password = live_server.new_user()
    return openeo.connect(live_server.url).authenticate_basic(name, password), name


def test_connect_and_describe_account(connection):
    con, name = connection
    assert con.capabilities().api_version() == "1.2.0"
    account = con.describe_account()
    assert account["name"] == name and account["user_id"]


def test_collections(connection):
    con, _ = connection
    assert {DEMO_S2_COLLECTION, DEMO_DEM_COLLECTION} <= set(con.list_collection_ids())
    metadata = con.describe_collection(DEMO_S2_COLLECTION)
    assert list(metadata["cube:dimensions"]["bands"]["values"]) == ["B02", "B03", "B04", "B08", "B11", "SCL"]
    assert [b["name"] for b in metadata["summaries"]["eo:bands"]] == ["B02", "B03", "B04", "B08", "B11", "SCL"]
    assert "synthetic" in metadata["description"].lower()
    # The client builds band metadata from the description: common names work as band names.
    cube = con.load_collection(DEMO_S2_COLLECTION, bands=["red", "nir"])
    assert cube.metadata.band_names == ["B04", "B08"]
    with pytest.raises(OpenEoApiError) as info:
        con.describe_collection("NO_SUCH_COLLECTION")
    assert info.value.http_status_code == 404 and info.value.code == "CollectionNotFound"


def test_processes_and_formats(connection):
    con, _ = connection
    ids = {p["id"] for p in con.list_processes()}
    assert {"load_collection", "save_result", "ndvi", "reduce_dimension", "add", "divide", "power"} <= ids
    formats = con.list_file_formats()
    assert {"GTiff", "netCDF"} <= set(formats["output"])


def test_user_defined_process_round_trip(connection):
    con, _ = connection
    from openeo.api.process import Parameter
    from openeo.processes import add

    x = Parameter.number("x", description="value")
    udp = con.save_user_defined_process("plus_one", add(x, 1), parameters=[x], summary="x + 1")
    assert [p["id"] for p in con.list_user_defined_processes()] == ["plus_one"]
    described = udp.describe()
    assert described["summary"] == "x + 1"
    assert described["parameters"][0]["name"] == "x"
    assert described["process_graph"]["add1"]["arguments"] == {"x": {"from_parameter": "x"}, "y": 1}
    udp.delete()
    assert con.list_user_defined_processes() == []
