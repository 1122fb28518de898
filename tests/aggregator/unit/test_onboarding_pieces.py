"""Pieces of the onboarding self-check: the tiny request it sends, the openEO schema check it applies."""

from __future__ import annotations

from aggregator.onboarding.checks_processing import tiny_graph
from aggregator.onboarding.openapi import response_problems

S2 = {"id": "S2", "extent": {"spatial": {"bbox": [[10, 40, 14, 48], [11.0, 46.0, 11.2, 46.2]]},
                              "temporal": {"interval": [["2022-04-18T10:20:21Z", None]]}},
      "cube:dimensions": {"bands": {"type": "bands", "values": ["B02", "B03"]}}}


def test_the_tiny_request_reads_a_few_pixels_of_one_band_over_a_month():
    graph = tiny_graph(S2, "GTiff")
    assert graph["load"]["arguments"] == {
        "id": "S2", "bands": ["B02"], "temporal_extent": ["2022-04-18T10:20:21Z", "2022-05-19T10:20:21Z"],
        "spatial_extent": {"west": 11.0999, "south": 46.0999, "east": 11.1001, "north": 46.1001}}
    assert graph["save"] == {"process_id": "save_result", "result": True,
                             "arguments": {"data": {"from_node": "load"}, "format": "GTiff"}}


def test_without_bands_or_time_the_request_leaves_them_out():
    graph = tiny_graph({"id": "DEM", "extent": {"spatial": {"bbox": [[0, 0, 0, 2, 2, 9]]}}}, "netCDF")
    assert graph["load"]["arguments"] == {"id": "DEM", "spatial_extent": {
        "west": 0.9999, "south": 0.9999, "east": 1.0001, "north": 1.0001}}


def test_schema_problems_name_where():
    assert response_problems("GET", "/file_formats", {"input": {}, "output": {}}) == []
    assert response_problems("GET", "/file_formats", {"input": {}}) == ["the document: 'output' is a required property"]
    problems = response_problems("GET", "/collections", {"collections": [{"id": "x"}], "links": []}, limit=10)
    assert "collections[0]: 'stac_version' is a required property" in problems
    assert "collections[0]: 'extent' is a required property" in problems
    # a range summary is valid (the API document's overlapping oneOf read as anyOf)
    collection = {"stac_version": "1.0.0", "type": "Collection", "id": "c", "description": "d", "license": "proprietary",
                  "extent": {"spatial": {"bbox": [[0, 0, 1, 1]]}, "temporal": {"interval": [["2020-01-01T00:00:00Z", None]]}},
                  "links": [], "summaries": {"eo:cloud_cover": {"minimum": 0, "maximum": 100}},
                  "cube:dimensions": {"bands": {"type": "bands", "values": ["B1"]}}}
    assert response_problems("GET", "/collections/{collection_id}", collection) == []
