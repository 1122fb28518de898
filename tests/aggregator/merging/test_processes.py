"""Merging /processes of several backends: our backend's real listing and variants of it."""

from __future__ import annotations

import copy

import pytest

from aggregator.federation.backends import ProcessRules
from aggregator.merging.processes import merge_processes
from tests.aggregator.merging.conftest import AGGREGATOR, process
from tests.aggregator.merging.openapi_check import assert_valid_federation_fields, assert_valid_response

SAR = {"id": "sar_backscatter", "summary": "Computes backscatter from SAR input", "description": "Proprietary.",
       "categories": ["cubes", "sar"],
       "parameters": [{"name": "data", "description": "The data cube.", "schema": {"type": "object",
                                                                                    "subtype": "datacube"}}],
       "returns": {"description": "Backscatter.", "schema": {"type": "object", "subtype": "datacube"}}}


@pytest.fixture
def listings(real) -> dict[str, dict]:
    """b1: our real listing. b2: no ndvi; load_collection with an extra parameter and another description
    of its return value; mean returning a number only. b3: our listing plus sar_backscatter."""
    b2 = real.copy("processes")
    b2["processes"] = [p for p in b2["processes"] if p["id"] != "ndvi"]
    load = process(b2, "load_collection")
    load["parameters"].append({"name": "featureflags", "description": "Backend-specific options.",
                               "schema": {"type": "object"}, "optional": True, "default": {}})
    load["returns"]["description"] = "The cube."  # prose: not a conflict
    process(b2, "mean")["returns"]["schema"] = {"type": "number"}
    b3 = real.copy("processes")
    b3["processes"].append(SAR)
    return {"b1": real.processes, "b2": b2, "b3": b3}


def by_id(document: dict) -> dict[str, dict]:
    return {p["id"]: p for p in document["processes"]}


def test_union_with_backends_on_processes_and_parameters(listings, real):
    merged = merge_processes(listings, root_url=AGGREGATOR, rules={"b3": ProcessRules(deny=["load_*"])})
    processes = by_id(merged.document)
    ids = [p["id"] for p in merged.document["processes"]]
    assert ids == sorted(ids) and len(ids) == len(real.processes["processes"]) + 1
    assert processes["ndvi"]["federation:backends"] == ["b1", "b3"]
    assert processes["load_collection"]["federation:backends"] == ["b1", "b2"]  # b3 denies load_*
    assert processes["sar_backscatter"] == {**SAR, "federation:backends": ["b3"]}
    assert "federation:backends" not in processes["add"]
    parameters = {p["name"]: p.get("federation:backends") for p in processes["load_collection"]["parameters"]}
    assert parameters == {"id": None, "spatial_extent": None, "temporal_extent": None, "bands": None,
                          "properties": None, "featureflags": ["b2"]}
    assert processes["load_collection"]["returns"] == process(real.processes, "load_collection")["returns"]
    assert merged.by_backend["b3"] >= {"sar_backscatter", "ndvi"} and "load_stac" not in merged.by_backend["b3"]
    assert "load_collection" in merged.by_backend["b1"]


def test_different_return_values_take_the_most_common_and_are_recorded(listings, real):
    merged = merge_processes(listings, root_url=AGGREGATOR)
    real_schema = process(real.processes, "mean")["returns"]["schema"]
    assert [c.to_dict() for c in merged.conflicts] == [
        {"kind": "process", "id": "mean", "path": "returns.schema",
         "values": {"b1": real_schema, "b2": {"type": "number"}, "b3": real_schema}, "chosen": "b1",
         "shown": real_schema}]
    assert by_id(merged.document)["mean"]["returns"]["schema"] == real_schema


def test_a_tie_goes_to_the_heavier_backend(real):
    b2 = real.copy("processes")
    process(b2, "mean")["returns"]["schema"] = {"type": "number"}
    pair = {"b1": real.processes, "b2": b2}
    assert by_id(merge_processes(pair, root_url=AGGREGATOR).document)["mean"]["returns"]["schema"] != {"type": "number"}
    heavier = merge_processes(pair, root_url=AGGREGATOR, weights={"b2": 3})
    assert by_id(heavier.document)["mean"]["returns"]["schema"] == {"type": "number"}
    assert heavier.conflicts[0].chosen == "b2"


def test_a_parameter_schema_that_differs_is_recorded_its_description_is_not(real):
    b2 = real.copy("processes")
    data = process(b2, "absolute")["parameters"][0]
    data["description"] = "A number."
    data["schema"] = {"type": "number"}
    merged = merge_processes({"b1": real.processes, "b2": b2}, root_url=AGGREGATOR, weights={"b2": 2})
    original = process(real.processes, "absolute")["parameters"][0]
    assert [(c.id, c.field, c.chosen) for c in merged.conflicts] == [("absolute", "parameters.x.schema", "b2")]
    assert merged.conflicts[0].values == {"b2": {"type": "number"}, "b1": original["schema"]}
    assert by_id(merged.document)["absolute"]["parameters"][0] == {**original, "description": "A number.",
                                                                   "schema": {"type": "number"}}


def test_a_missing_backend_is_listed_and_no_process_claims_to_be_everywhere(real):
    merged = merge_processes({"b1": real.processes, "b2": real.processes}, root_url=AGGREGATOR, missing=["b3"])
    assert merged.document["federation:missing"] == ["b3"]
    assert {tuple(p["federation:backends"]) for p in merged.document["processes"]} == {("b1", "b2")}


def test_listing_links_are_the_aggregators(listings):
    links = merge_processes(listings, root_url=AGGREGATOR).document["links"]
    assert links == [{"rel": "self", "href": AGGREGATOR + "processes", "type": "application/json"},
                     {"rel": "root", "href": AGGREGATOR, "type": "application/json"}]


def test_answers_do_not_depend_on_answer_order_and_inputs_stay_unchanged(listings):
    before = copy.deepcopy(listings)
    forward = merge_processes(listings, root_url=AGGREGATOR)
    backward = merge_processes(dict(reversed(list(listings.items()))), root_url=AGGREGATOR)
    assert forward.document == backward.document and forward.conflicts == backward.conflicts
    assert listings == before


def test_merged_listing_is_a_valid_openeo_response(listings):
    merged = merge_processes(listings, root_url=AGGREGATOR, rules={"b3": ProcessRules(deny=["load_*"])},
                             missing=["b4"])
    assert_valid_response("/processes", merged.document)
    # every process carries it (b4 is missing), plus featureflags and federation:missing
    assert assert_valid_federation_fields(merged.document, ["b1", "b2", "b3", "b4"]) == \
        len(merged.document["processes"]) + 2
