"""Filters after a load pushed into the load (backend/processing/engine/pushdown.py): what is merged, and
what is left alone because merging could change the answer."""

from __future__ import annotations

from backend.processing.engine.pushdown import PAD_DEGREES, push_filters

BANDS = ["B02", "B03", "B04", "B08"]
AREA = {"west": 679720, "south": 5151080, "east": 680680, "north": 5151920, "crs": 32632}


def _bands_of(collection_id: str):
    return BANDS if collection_id == "S2" else None


def _load(**arguments) -> dict:
    return {"process_id": "load_collection", "arguments": {"id": "S2", "spatial_extent": None,
                                                           "temporal_extent": None, **arguments}}


def _filter(process_id: str, source: str, result: bool = False, **arguments) -> dict:
    return {"process_id": process_id, "arguments": {"data": {"from_node": source}, **arguments}, "result": result}


def test_a_chain_of_filters_becomes_one_load():
    graph = {"load": _load(),
             "bbox": _filter("filter_bbox", "load", extent=AREA),
             "time": _filter("filter_temporal", "bbox", extent=["2022-06-01", "2022-07-01"]),
             "bands": _filter("filter_bands", "time", bands=["B08", "B04"]),
             "save": {"process_id": "save_result", "arguments": {"data": {"from_node": "bands"}, "format": "GTiff"},
                      "result": True}}
    pushed = push_filters(graph, _bands_of)
    assert set(pushed) == {"bands", "save"} and pushed["save"] == graph["save"]
    assert pushed["bands"]["process_id"] == "load_collection" and not pushed["bands"]["result"]
    assert pushed["bands"]["arguments"] == {"id": "S2", "spatial_extent": AREA,
                                            "temporal_extent": ["2022-06-01", "2022-07-01"], "bands": ["B08", "B04"]}
    assert graph["load"]["arguments"]["spatial_extent"] is None  # the graph as sent is untouched


def test_extents_are_intersected():
    graph = {"load": _load(spatial_extent={**AREA, "west": 679000}, temporal_extent=["2022-05-01", "2022-06-15"],
                           bands=["B04", "B08"]),
             "bbox": _filter("filter_bbox", "load", extent={**AREA, "north": 5152500}),
             "time": _filter("filter_temporal", "bbox", extent=["2022-06-01T00:00:00Z", None]),
             "bands": _filter("filter_bands", "time", result=True, bands=["B08"])}
    [(node_id, node)] = push_filters(graph, _bands_of).items()
    assert node_id == "bands" and node["result"] is True
    assert node["arguments"]["spatial_extent"] == AREA
    assert node["arguments"]["temporal_extent"] == ["2022-06-01T00:00:00Z", "2022-06-15"]
    assert node["arguments"]["bands"] == ["B08"]


def test_filter_spatial_stays_and_the_load_reads_its_padded_bounding_box():
    polygon = {"type": "Polygon", "coordinates": [[[11.30, 46.40], [11.32, 46.40], [11.31, 46.42], [11.30, 46.40]]]}
    graph = {"load": _load(), "spatial": _filter("filter_spatial", "load", result=True, geometries=polygon)}
    pushed = push_filters(graph, _bands_of)
    assert pushed["spatial"] == graph["spatial"]
    extent = pushed["load"]["arguments"]["spatial_extent"]
    assert extent == {"west": 11.30 - PAD_DEGREES, "south": 46.40 - PAD_DEGREES, "east": 11.32 + PAD_DEGREES,
                      "north": 46.42 + PAD_DEGREES}


def test_what_could_change_the_answer_is_left_alone():
    cases = [
        # the load is read by another node too
        {"load": _load(), "bbox": _filter("filter_bbox", "load", extent=AREA),
         "other": _filter("filter_bands", "load", bands=["B04"]),
         "merge": {"process_id": "merge_cubes", "arguments": {"cube1": {"from_node": "bbox"},
                                                              "cube2": {"from_node": "other"}}, "result": True}},
        # a parameter, not a literal
        {"load": _load(), "bbox": _filter("filter_bbox", "load", result=True, extent={"from_parameter": "area"})},
        # different CRSs
        {"load": _load(spatial_extent=AREA),
         "bbox": _filter("filter_bbox", "load", result=True, extent={"west": 11, "south": 46, "east": 12, "north": 47})},
        # a common name (the filter resolves it) and an unknown band (the filter refuses it)
        {"load": _load(), "bands": _filter("filter_bands", "load", result=True, bands=["red"])},
        {"load": _load(bands=["B04"]), "bands": _filter("filter_bands", "load", result=True, bands=["B08"])},
        # another dimension, an empty overlap, a non-load source
        {"load": _load(), "time": _filter("filter_temporal", "load", result=True, extent=["2022", "2023"],
                                          dimension="acquired")},
        {"load": _load(temporal_extent=["2022-01-01", "2022-02-01"]),
         "time": _filter("filter_temporal", "load", result=True, extent=["2022-03-01", "2022-04-01"])},
        {"load": {"process_id": "load_uploaded_files", "arguments": {"paths": ["a.tif"], "format": "GTiff"}},
         "bbox": _filter("filter_bbox", "load", result=True, extent=AREA)},
    ]
    for graph in cases:
        assert push_filters(graph, _bands_of) == graph, graph
