"""STAC → openEO collection metadata for collections with and without cube:dimensions."""

from __future__ import annotations

from backend.catalog.metadata import collection_summary, to_openeo_collection
from backend.catalog.queryables import queryables

ROOT = "http://h/openeo/1.2"


def _stac_11_collection() -> dict:
    return {
        "type": "Collection", "stac_version": "1.1.0", "id": "sentinel-2-l2a", "description": "S2",
        "license": "other", "links": [{"rel": "license", "href": "https://example.org/license"},
                                      {"rel": "items", "href": "./items"}],
        "extent": {"spatial": {"bbox": [[5, 45, 6, 46]]},
                   "temporal": {"interval": [["2022-01-01T00:00:00Z", None]]}},
        "item_assets": {
            "red": {"bands": [{"name": "red", "eo:common_name": "red", "eo:center_wavelength": 0.665}]},
            "nir": {"bands": [{"name": "nir", "eo:common_name": "nir", "eo:center_wavelength": 0.842}]},
        },
    }


def test_dimensions_derived_when_missing():
    result = to_openeo_collection(_stac_11_collection(), "S2", ROOT)
    assert result["id"] == "S2" and result["stac_version"] == "1.0.0"
    dims = result["cube:dimensions"]
    assert list(dims) == ["x", "y", "t", "bands"]
    assert dims["x"]["extent"] == [5, 6] and dims["y"]["extent"] == [45, 46]
    assert dims["t"]["extent"] == ["2022-01-01T00:00:00Z", None]
    assert dims["bands"]["values"] == ["red", "nir"]
    assert result["summaries"]["eo:bands"] == [
        {"name": "red", "common_name": "red", "center_wavelength": 0.665},
        {"name": "nir", "common_name": "nir", "center_wavelength": 0.842}]
    assert "https://stac-extensions.github.io/datacube/v2.2.0/schema.json" in result["stac_extensions"]


def test_links_are_ours_plus_absolute_source_links():
    links = to_openeo_collection(_stac_11_collection(), "S2", ROOT)["links"]
    by_rel = {link["rel"]: link["href"] for link in links}
    assert by_rel["self"] == f"{ROOT}/collections/S2"
    assert by_rel["license"] == "https://example.org/license"
    assert "items" not in by_rel  # relative source links would point nowhere


def test_existing_dimensions_and_order_are_kept():
    stac = {**_stac_11_collection(), "cube:dimensions": {
        "t": {"type": "temporal", "extent": ["2020-01-01", None]},
        "bands": {"type": "bands", "values": ["nir", "red"]}}}
    result = to_openeo_collection(stac, "S2", ROOT)
    assert list(result["cube:dimensions"]) == ["t", "bands"]
    assert result["cube:dimensions"]["bands"]["values"] == ["nir", "red"]


def test_summary_drops_cube_details():
    summary = collection_summary(to_openeo_collection(_stac_11_collection(), "S2", ROOT))
    assert "cube:dimensions" not in summary and "summaries" not in summary
    assert summary["extent"]["spatial"]["bbox"] == [[5, 45, 6, 46]]


def test_queryables_from_item_properties():
    items = [{"properties": {"datetime": "x", "eo:cloud_cover": 12.5, "platform": "s2a", "s2:tile": "32TMS",
                             "proj:shape": [1, 2], "view:sun_elevation": 40}}]
    schema = queryables("S2", items, ROOT)
    props = schema["properties"]
    assert props["eo:cloud_cover"]["type"] == "number" and props["eo:cloud_cover"]["maximum"] == 100
    assert props["s2:tile"]["type"] == "string" and props["view:sun_elevation"]["type"] == "integer"
    assert "proj:shape" not in props
    assert schema["$id"] == f"{ROOT}/collections/S2/queryables"


def test_stac_11_fields_are_made_valid_stac_10():
    stac = {**_stac_11_collection(), "license": "other", "version": "2.1"}
    result = to_openeo_collection(stac, "S2", ROOT)
    assert result["license"] == "proprietary"
    assert "https://stac-extensions.github.io/version/v1.2.0/schema.json" in result["stac_extensions"]
    assert "https://stac-extensions.github.io/item-assets/v1.0.0/schema.json" in result["stac_extensions"]
