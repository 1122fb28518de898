"""Collections of the embedded demo catalog, as served: listing, description, STAC validity offline."""

from __future__ import annotations

import pytest
import requests

from backend.demo import DEMO_DEM_COLLECTION, DEMO_S1_COLLECTION, DEMO_S2_COLLECTION
from tests.conftest import SHARED_ASSETS

SCHEMAS = SHARED_ASSETS / "stac-schemas"


def test_listing(api):
    body = requests.get(f"{api}/collections").json()
    assert [c["id"] for c in body["collections"]] == [DEMO_DEM_COLLECTION, DEMO_S1_COLLECTION, DEMO_S2_COLLECTION]
    for collection in body["collections"]:
        assert "synthetic" in collection["title"].lower() + collection["description"].lower()
        assert collection["extent"]["spatial"]["bbox"][0][0] < collection["extent"]["spatial"]["bbox"][0][2]
        assert collection["extent"]["temporal"]["interval"][0][0].startswith("2022-")
        assert collection["license"] and collection["stac_version"] == "1.0.0"
    assert {link["rel"] for link in body["links"]} >= {"self", "root"}


def test_listing_paging(api):
    first = requests.get(f"{api}/collections?limit=1").json()
    assert [c["id"] for c in first["collections"]] == [DEMO_DEM_COLLECTION]
    next_href = next(link["href"] for link in first["links"] if link["rel"] == "next")
    second = requests.get(next_href).json()
    assert [c["id"] for c in second["collections"]] == [DEMO_S1_COLLECTION]
    next_href = next(link["href"] for link in second["links"] if link["rel"] == "next")
    third = requests.get(next_href).json()
    assert [c["id"] for c in third["collections"]] == [DEMO_S2_COLLECTION]
    assert not any(link["rel"] == "next" for link in third["links"])


def test_s2_description(api):
    metadata = requests.get(f"{api}/collections/{DEMO_S2_COLLECTION}").json()
    dims = metadata["cube:dimensions"]
    assert list(dims) == ["x", "y", "t", "bands"]
    assert dims["x"]["type"] == "spatial" and dims["x"]["axis"] == "x"
    assert dims["t"]["extent"][0].startswith("2022-04-18") and dims["t"]["extent"][1].startswith("2022-09-15")
    assert dims["bands"]["values"] == ["B02", "B03", "B04", "B08", "B11", "SCL"]
    bands = metadata["summaries"]["eo:bands"]
    assert [b["name"] for b in bands] == dims["bands"]["values"]
    assert {b["name"]: b.get("common_name") for b in bands}["B08"] == "nir"
    assert {b["name"]: b.get("center_wavelength") for b in bands}["B04"] == pytest.approx(0.665, abs=0.01)
    # Official workflow-test area (EPSG:32632 x 679720–680680, y 5151080–5151920) is inside the extent.
    west, south, east, north = metadata["extent"]["spatial"]["bbox"][0]
    assert west < 11.33 < east and south < 46.49 < north
    assert any(p["roles"] and "producer" in p["roles"] for p in metadata["providers"])
    assert {link["rel"] for link in metadata["links"]} >= {"self", "root", "parent"}


def test_queryables(api):
    schema = requests.get(f"{api}/collections/{DEMO_S2_COLLECTION}/queryables")
    assert schema.headers["Content-Type"].startswith("application/schema+json")
    props = schema.json()["properties"]
    assert props["eo:cloud_cover"] == {"title": "Cloud cover (%)", "type": "number", "minimum": 0, "maximum": 100}
    assert props["datetime"]["format"] == "date-time"


def test_unknown_collection(api):
    for path in ("/collections/NOPE", "/collections/NOPE/queryables"):
        response = requests.get(f"{api}{path}")
        assert (response.status_code, response.json()["code"]) == (404, "CollectionNotFound")


@pytest.mark.skipif(not SCHEMAS.is_dir(), reason="offline STAC schemas absent (../shared/conformance-assets)")
def test_valid_under_stac_validator_offline(api):
    from stac_validator.validate import StacValidate

    from conformance import stac_offline

    stac_offline.install(SCHEMAS)
    for collection_id in (DEMO_S2_COLLECTION, DEMO_S1_COLLECTION, DEMO_DEM_COLLECTION):
        document = requests.get(f"{api}/collections/{collection_id}").json()
        validator = StacValidate()
        assert validator.validate_dict(document), validator.message
    broken = {**document, "extent": {"spatial": {"bbox": "everywhere"}}}
    validator = StacValidate()
    assert not validator.validate_dict(broken)  # the validator really validates
