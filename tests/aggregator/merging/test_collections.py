"""Merging collections of several backends: real documents of our backend and variants of them."""

from __future__ import annotations

import copy

import pytest

from aggregator.merging.collections import COLLECTION_RULES, merge_collection, merge_collection_listings
from tests.aggregator.merging.conftest import AGGREGATOR, DEM, S2, rehosted, without_band
from tests.aggregator.merging.openapi_check import assert_valid_federation_fields, assert_valid_response

B2_ROOT = "http://b2.test/openeo/1.2/"
B3_ROOT = "http://b3.test/openeo/1.2/"
T1_BBOX = [11.2780213, 46.4324403, 11.4496579, 46.5509823]  # the first tile of the real S2 collection


@pytest.fixture
def s2_variants(real) -> dict[str, dict]:
    """SENTINEL2_L2A_DEMO as three backends describe it.

    b1: our backend's real document. b2: without band B11, only tile T1 (one bbox), from June on.
    b3: an extra band B12, data until today (open end), a licence link on the backend, an about link.
    """
    b2 = rehosted(without_band(real.s2, "B11"), real.url, B2_ROOT)
    b2["extent"] = {"spatial": {"bbox": [T1_BBOX]},
                    "temporal": {"interval": [["2022-06-01T00:00:00Z", "2022-09-15T10:20:21Z"]]}}
    b3 = rehosted(real.s2, real.url, B3_ROOT)
    b3["cube:dimensions"]["bands"]["values"].append("B12")
    b3["summaries"]["eo:bands"].append({"name": "B12", "common_name": "swir22", "center_wavelength": 2.19, "gsd": 20})
    b3["extent"]["temporal"]["interval"] = [["2022-04-18T10:20:21Z", None]]
    b3["cube:dimensions"]["t"]["extent"] = ["2022-04-18T10:20:21Z", None]
    b3["links"] += [{"rel": "license", "href": B3_ROOT + "collections/SENTINEL2_L2A_DEMO/license"},
                    {"rel": "about", "href": "https://docs.example/s2"},
                    {"rel": "items", "href": B3_ROOT + "collections/SENTINEL2_L2A_DEMO/items"}]
    return {"b1": real.s2, "b2": b2, "b3": b3}


def band(document: dict, name: str) -> dict:
    return next(b for b in document["summaries"]["eo:bands"] if b["name"] == name)


def test_bands_are_united_with_per_band_backends(s2_variants):
    merged = merge_collection(S2, s2_variants, root_url=AGGREGATOR)
    document = merged.document
    assert document["cube:dimensions"]["bands"]["values"] == ["B02", "B03", "B04", "B08", "B11", "SCL", "B12"]
    assert [b["name"] for b in document["summaries"]["eo:bands"]] == ["B02", "B03", "B04", "B08", "B11", "SCL", "B12"]
    assert band(document, "B11")["federation:backends"] == ["b1", "b3"]
    assert band(document, "B12") == {"name": "B12", "common_name": "swir22", "center_wavelength": 2.19, "gsd": 20,
                                     "federation:backends": ["b3"]}
    assert band(document, "B04") == {**band(s2_variants["b1"], "B04")}  # on every backend: no federation field
    assert sorted(document["item_assets"]) == ["B02", "B03", "B04", "B08", "B11", "SCL"]
    assert document["federation:backends"] == document["summaries"]["federation:backends"] == ["b1", "b2", "b3"]
    assert merged.conflicts == ()  # variants of one description disagree on nothing


def test_extents_are_united_and_each_backends_own_kept(s2_variants, real):
    document = merge_collection(S2, s2_variants, root_url=AGGREGATOR).document
    real_bboxes = real.s2["extent"]["spatial"]["bbox"]
    # overall first (b1's overall holds b2's tile); then b1's two tiles (b2's tile is b1's first tile)
    assert document["extent"]["spatial"]["bbox"] == [real_bboxes[0], real_bboxes[1], real_bboxes[2]]
    assert document["extent"]["temporal"]["interval"] == [
        ["2022-04-18T10:20:21Z", None],  # overall: b3's open end stays open
        ["2022-04-18T10:20:21Z", "2022-09-15T10:20:21Z"],  # then b1's, b2's and b3's own
        ["2022-06-01T00:00:00Z", "2022-09-15T10:20:21Z"],
        ["2022-04-18T10:20:21Z", None],
    ]
    assert document["cube:dimensions"]["t"]["extent"] == ["2022-04-18T10:20:21Z", None]
    assert document["cube:dimensions"]["x"] == real.s2["cube:dimensions"]["x"]


def test_disjoint_bboxes_give_their_union_then_each_bbox():
    a = {"id": "C", "extent": {"spatial": {"bbox": [[0, 0, 1, 1]]}, "temporal": {"interval": [["2020", "2021"]]}}}
    b = {"id": "C", "extent": {"spatial": {"bbox": [[5, -2, 6, 0.5]]},
                               "temporal": {"interval": [["2019-06-01T00:00:00Z", "2020-06-01T00:00:00Z"]]}}}
    extent = merge_collection("C", {"a": a, "b": b}, root_url=AGGREGATOR).document["extent"]
    assert extent["spatial"]["bbox"] == [[0, -2, 6, 1], [0, 0, 1, 1], [5, -2, 6, 0.5]]
    assert extent["temporal"]["interval"] == [["2019-06-01T00:00:00Z", "2021"], ["2020", "2021"],
                                              ["2019-06-01T00:00:00Z", "2020-06-01T00:00:00Z"]]


def test_links_lead_to_the_aggregator_and_to_public_documents_only(s2_variants, real):
    links = merge_collection(S2, s2_variants, root_url=AGGREGATOR).document["links"]
    assert links[:3] == [
        {"rel": "self", "href": AGGREGATOR + "collections/SENTINEL2_L2A_DEMO", "type": "application/json"},
        {"rel": "root", "href": AGGREGATOR, "type": "application/json"},
        {"rel": "parent", "href": AGGREGATOR + "collections", "type": "application/json"},
    ]
    # queryables and items of the backends are gone; b3's licence (on the backend) and about link stay
    assert links[3:] == [{"rel": "license", "href": B3_ROOT + "collections/SENTINEL2_L2A_DEMO/license"},
                         {"rel": "about", "href": "https://docs.example/s2"}]
    assert not any(real.url in link["href"] for link in links)


def test_conflicts_are_listed_with_each_backends_value():
    def doc(title, licence, common_name, wavelength, step, crs):
        return {"id": "C", "title": title, "license": licence,
                "cube:dimensions": {"t": {"type": "temporal", "extent": ["2020-01-01", None], "step": step},
                                    "x": {"type": "spatial", "axis": "x", "extent": [0, 1], "reference_system": crs}},
                "summaries": {"eo:bands": [{"name": "B04", "common_name": common_name,
                                            "center_wavelength": wavelength}]}}

    merged = merge_collection("C", {"vito": doc("Sentinel-2", "CC-BY-4.0", "red", 0.665, "P5D", 4326),
                                    "eodc": doc("S2 L2A", "proprietary", "red", 0.664, None, 32632),
                                    "sh": doc("S2 L2A", "CC-BY-4.0", "nir", 0.665, "P1D", 4326)},
                              root_url=AGGREGATOR, weights={"vito": 2})
    assert [c.to_dict() for c in merged.conflicts] == [
        {"kind": "collection", "id": "C", "path": "title",
         "values": {"vito": "Sentinel-2", "eodc": "S2 L2A", "sh": "S2 L2A"}, "chosen": "vito", "shown": "Sentinel-2"},
        {"kind": "collection", "id": "C", "path": "license",
         "values": {"vito": "CC-BY-4.0", "eodc": "proprietary", "sh": "CC-BY-4.0"}, "chosen": "various",
         "shown": "various"},
        {"kind": "collection", "id": "C", "path": "cube:dimensions.t.step", "values": {"vito": "P5D", "sh": "P1D"},
         "chosen": "vito", "shown": "P5D"},
        {"kind": "collection", "id": "C", "path": "cube:dimensions.x.reference_system",
         "values": {"vito": 4326, "eodc": 32632, "sh": 4326}, "chosen": "vito", "shown": 4326},
        {"kind": "collection", "id": "C", "path": "summaries.eo:bands[B04].common_name",
         "values": {"vito": "red", "eodc": "red", "sh": "nir"}, "chosen": "vito", "shown": "red"},
        {"kind": "collection", "id": "C", "path": "summaries.eo:bands[B04].center_wavelength",
         "values": {"vito": 0.665, "eodc": 0.664, "sh": 0.665}, "chosen": "vito", "shown": 0.665},
    ]
    document = merged.document
    assert (document["title"], document["license"]) == ("Sentinel-2", "various")
    assert document["summaries"]["eo:bands"] == [{"name": "B04", "common_name": "red", "center_wavelength": 0.665}]
    assert document["cube:dimensions"]["t"]["step"] == "P5D"


def test_stac_1_1_bands_and_summaries_merge_like_eo_bands():
    a = {"id": "C", "stac_version": "1.0.0", "summaries": {"bands": [{"name": "VV"}], "platform": ["sentinel-1a"],
                                                            "sar:resolution_range": {"minimum": 10, "maximum": 20}}}
    b = {"id": "C", "stac_version": "1.1.0", "summaries": {"bands": [{"name": "VV"}, {"name": "VH"}],
                                                            "platform": ["sentinel-1b"],
                                                            "sar:resolution_range": {"minimum": 5, "maximum": 15}}}
    document = merge_collection("C", {"a": a, "b": b}, root_url=AGGREGATOR).document
    assert document["stac_version"] == "1.1.0"
    assert document["summaries"] == {"bands": [{"name": "VV"}, {"name": "VH", "federation:backends": ["b"]}],
                                     "platform": ["sentinel-1a", "sentinel-1b"],
                                     "sar:resolution_range": {"minimum": 5, "maximum": 20},
                                     "federation:backends": ["a", "b"]}


def test_listing_has_every_collection_once_by_id_and_single_backend_ones_keep_their_document(real, s2_variants):
    b2_listing = {"collections": [{**s2_variants["b2"], "id": "S1_GRD", "title": "Sentinel-1"}, s2_variants["b2"]],
                  "links": [{"rel": "root", "href": B2_ROOT}]}
    listing = merge_collection_listings({"b2": b2_listing, "b1": real.collections}, root_url=AGGREGATOR,
                                        missing=["b3"])
    document = listing.document
    assert [(c["id"], c["federation:backends"]) for c in document["collections"]] == [
        (DEM, ["b1"]), ("S1_GRD", ["b2"]), ("SENTINEL1_GRD_DEMO", ["b1"]), (S2, ["b1", "b2"])]
    assert document["federation:missing"] == ["b3"]
    assert document["links"] == [{"rel": "self", "href": AGGREGATOR + "collections", "type": "application/json"},
                                 {"rel": "root", "href": AGGREGATOR, "type": "application/json"}]
    dem = document["collections"][0]
    original = next(c for c in real.collections["collections"] if c["id"] == DEM)
    assert {k: v for k, v in dem.items() if k not in ("links", "summaries", "federation:backends")} == \
        {k: v for k, v in original.items() if k != "links"}
    assert dem["summaries"] == {"federation:backends": ["b1"]}
    assert [link["rel"] for link in dem["links"]] == ["self", "root", "parent"]
    # routing keeps every backend's own documents
    assert listing.index.backends_of(S2) == ["b1", "b2"]
    assert listing.index.document(S2, "b2")["extent"]["spatial"]["bbox"] == [T1_BBOX]
    assert listing.index.document("S1_GRD", "b1") is None


def test_answers_do_not_depend_on_the_order_backends_answered_in(s2_variants):
    forward = merge_collection(S2, s2_variants, root_url=AGGREGATOR)
    backward = merge_collection(S2, dict(reversed(list(s2_variants.items()))), root_url=AGGREGATOR)
    assert forward == backward


def test_weight_decides_whose_value_is_shown(s2_variants):
    variants = copy.deepcopy(s2_variants)
    variants["b3"]["title"] = "Sentinel-2 (b3)"
    assert merge_collection(S2, variants, root_url=AGGREGATOR).document["title"] == s2_variants["b1"]["title"]
    preferred = merge_collection(S2, variants, root_url=AGGREGATOR, weights={"b3": 5})
    assert preferred.document["title"] == "Sentinel-2 (b3)"
    assert preferred.conflicts[0].to_dict()["chosen"] == "b3"


def test_inputs_are_not_changed(s2_variants):
    before = copy.deepcopy(s2_variants)
    merge_collection(S2, s2_variants, root_url=AGGREGATOR)
    merge_collection_listings({b: {"collections": [d]} for b, d in s2_variants.items()}, root_url=AGGREGATOR)
    assert s2_variants == before


def test_a_backend_with_oddly_shaped_fields_does_not_break_the_merge(s2_variants):
    odd = copy.deepcopy(s2_variants["b2"])
    odd["keywords"] = "synthetic"  # a string, not a list
    odd["extent"] = {"spatial": {"bbox": "everywhere"}, "temporal": {}}
    odd["providers"] = {"name": "x"}
    document = merge_collection(S2, {"b1": s2_variants["b1"], "b2": odd}, root_url=AGGREGATOR).document
    assert document["keywords"] == ["synthetic", "demo", "openEO"]
    assert document["extent"]["spatial"]["bbox"] == s2_variants["b1"]["extent"]["spatial"]["bbox"]
    assert document["providers"] == s2_variants["b1"]["providers"]


def test_merged_documents_are_valid_openeo_responses(real, s2_variants):
    full = merge_collection(S2, s2_variants, root_url=AGGREGATOR).document
    assert_valid_response(f"/collections/{S2}", full)
    assert assert_valid_federation_fields(full, ["b1", "b2", "b3"]) == 4  # top level, summaries, B11, B12
    listing = merge_collection_listings({"b1": real.collections, "b2": {"collections": [s2_variants["b2"]]}},
                                        root_url=AGGREGATOR, missing=["b3"]).document
    assert_valid_response("/collections", listing)
    # each collection (top level and summaries) and federation:missing; listing entries of b1 have no bands
    assert len(listing["collections"]) == 3  # b1's demo collections (S2, S1, DEM), S2 also on b2
    assert assert_valid_federation_fields(listing, ["b1", "b2", "b3"]) == 2 * 3 + 1


def test_the_rule_table_names_a_rule_for_the_fields_of_our_documents(real):
    assert {"title", "license", "extent", "cube:dimensions", "summaries", "keywords"} <= set(COLLECTION_RULES)
    assert COLLECTION_RULES["title"].__name__ == "first_non_null_recorded"
    assert COLLECTION_RULES["extent"].__name__ == "union_of_extents"


def test_the_schema_check_rejects_an_invalid_listing():
    with pytest.raises(AssertionError, match="GET /collections"):
        assert_valid_response("/collections", {"collections": [{"id": 5}], "links": []})
