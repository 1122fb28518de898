"""Merging /file_formats, /udf_runtimes and /service_types of several backends."""

from __future__ import annotations

import pytest

from aggregator.merging.file_formats import merge_file_formats
from aggregator.merging.resource_maps import merge_service_types, merge_udf_runtimes
from tests.aggregator.merging.openapi_check import assert_valid_federation_fields, assert_valid_response


@pytest.fixture
def formats(real) -> dict[str, dict]:
    """b1: our real formats. b2: "GTIFF" (other case) with a ``tiled`` parameter and without ``predictor``,
    another title, no netCDF output, a "Parquet" output, and "geojson" input spelled in lower case."""
    b2 = real.copy("file_formats")
    gtiff = b2["output"].pop("GTiff")
    gtiff["title"] = "GeoTIFF"
    gtiff["parameters"].pop("predictor")
    gtiff["parameters"]["tiled"] = {"type": "boolean", "default": True, "description": "Tiled."}
    b2["output"]["GTIFF"] = gtiff
    del b2["output"]["netCDF"]
    b2["output"]["Parquet"] = {"title": "GeoParquet", "gis_data_types": ["vector"], "parameters": {}}
    b2["input"]["geojson"] = b2["input"].pop("GeoJSON")
    return {"b1": real.file_formats, "b2": b2}


def test_formats_match_ignoring_case_with_backends_per_format_and_parameter(formats, real):
    merged = merge_file_formats(formats)
    output = merged.document["output"]
    assert list(output) == [*real.file_formats["output"], "Parquet"]  # b1's spelling: GTiff
    assert "federation:backends" not in output["GTiff"]
    assert output["netCDF"]["federation:backends"] == ["b1"]
    assert output["Parquet"]["federation:backends"] == ["b2"]
    assert "geojson" not in merged.document["input"]
    assert "federation:backends" not in merged.document["input"]["GeoJSON"]
    parameters = {name: p.get("federation:backends") for name, p in output["GTiff"]["parameters"].items()}
    assert parameters == {"compression": None, "predictor": ["b1"], "blocksize": None, "overviews": None,
                          "overview_resampling": None, "tiled": ["b2"]}
    assert output["GTiff"]["title"] == real.file_formats["output"]["GTiff"]["title"]
    assert [c.to_dict() for c in merged.conflicts] == [
        {"kind": "file_format", "id": "output:GTiff", "path": "title",
         "values": {"b1": real.file_formats["output"]["GTiff"]["title"], "b2": "GeoTIFF"}, "chosen": "b1",
         "shown": real.file_formats["output"]["GTiff"]["title"]}]


def test_the_preferred_backends_spelling_and_title_win(formats):
    output = merge_file_formats(formats, weights={"b2": 2}).document["output"]
    assert "GTIFF" in output and "GTiff" not in output
    assert output["GTIFF"]["title"] == "GeoTIFF"


def test_a_missing_backend_is_listed_and_formats_name_their_backends(real):
    merged = merge_file_formats({"b1": real.file_formats}, missing=["b2"])
    assert merged.document["federation:missing"] == ["b2"]
    assert all(f["federation:backends"] == ["b1"] for f in merged.document["output"].values())


def test_merged_file_formats_are_a_valid_openeo_response(formats):
    document = merge_file_formats(formats, missing=["b3"]).document
    assert_valid_response("/file_formats", document)
    assert assert_valid_federation_fields(document, ["b1", "b2", "b3"]) > 10


PYTHON_B1 = {"title": "Python 3", "type": "language", "default": "3.11",
             "versions": {"3.11": {"libraries": {"numpy": {"version": "1.26"}, "xarray": {"version": "2024.7"}}}}}
PYTHON_B2 = {"title": "Python 3", "type": "language", "default": "3.11",
             "versions": {"3.11": {"libraries": {"numpy": {"version": "2.1"}}},
                          "3.12": {"libraries": {"numpy": {"version": "2.1"}}}}}
R_B2 = {"title": "R", "type": "language", "default": "4", "versions": {"4": {"libraries": {}}}}


def test_udf_runtimes_unite_versions_and_libraries_without_top_level_federation_fields():
    merged = merge_udf_runtimes({"b2": {"Python": PYTHON_B2, "R": R_B2}, "b1": {"Python": PYTHON_B1}})
    document = merged.document
    assert list(document) == ["Python", "R"]  # only runtimes at the top level
    assert document["R"] == {**R_B2, "federation:backends": ["b2"]}
    python = document["Python"]
    assert "federation:backends" not in python
    assert python["versions"]["3.12"]["federation:backends"] == ["b2"]
    assert python["versions"]["3.11"]["libraries"] == {"numpy": {"version": "1.26"},
                                                       "xarray": {"version": "2024.7", "federation:backends": ["b1"]}}
    assert [c.to_dict() for c in merged.conflicts] == [
        {"kind": "udf_runtime", "id": "Python", "path": "versions.3.11.libraries.numpy.version",
         "values": {"b1": "1.26", "b2": "2.1"}, "chosen": "b1", "shown": "1.26"}]
    assert_valid_response("/udf_runtimes", document)
    assert assert_valid_federation_fields(document, ["b1", "b2"]) == 3


def test_our_python_runtime_merges_beside_another_backends_r(real):
    assert set(real.udf_runtimes) == {"Python"}
    merged = merge_udf_runtimes({"b1": real.udf_runtimes, "b2": {"R": R_B2}}).document
    assert merged == {"Python": {**real.udf_runtimes["Python"], "federation:backends": ["b1"]},
                      "R": {**R_B2, "federation:backends": ["b2"]}}


WMTS = {"title": "WMTS", "configuration": {"version": {"type": "string", "default": "1.0.0",
                                                       "description": "WMTS version"}},
        "process_parameters": [], "links": []}


def test_service_types_unite_configuration_parameters():
    b2_wmts = {**WMTS, "configuration": {**WMTS["configuration"],
                                         "tile_size": {"type": "integer", "default": 256, "description": "px"}}}
    xyz = {"title": "XYZ tiles", "configuration": {}, "process_parameters": []}
    merged = merge_service_types({"b1": {"WMTS": WMTS}, "b2": {"WMTS": b2_wmts, "XYZ": xyz}})
    document = merged.document
    assert list(document) == ["WMTS", "XYZ"]
    assert document["XYZ"]["federation:backends"] == ["b2"]
    assert "federation:backends" not in document["WMTS"]
    assert document["WMTS"]["configuration"]["tile_size"]["federation:backends"] == ["b2"]
    assert "federation:backends" not in document["WMTS"]["configuration"]["version"]
    assert merged.conflicts == ()
    assert_valid_response("/service_types", document)
