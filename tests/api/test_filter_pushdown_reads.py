"""Filters after load_collection cost what load arguments cost: the values a request loads (its usage and
what the synchronous size limit counts) are the same either way, and so are the pixels computed; without
the pushdown the same graph loads the whole tile. Through the real client, the sync size limit."""

from __future__ import annotations

import json

import numpy as np
import openeo
import pytest

from backend.demo import DEMO_S2_COLLECTION
from backend.processing.engine.executor import Executor, RunContext
from backend.processing.engine.graph import Graph
from backend.processing.sync import evaluate

AREA = {"west": 679720, "south": 5151080, "east": 680680, "north": 5151920, "crs": 32632}
JUNE = ["2022-06-01", "2022-07-01"]


def _with_filters() -> dict:
    return {"load": {"process_id": "load_collection", "arguments": {"id": DEMO_S2_COLLECTION, "spatial_extent": None,
                                                                   "temporal_extent": None}},
            "bbox": {"process_id": "filter_bbox", "arguments": {"data": {"from_node": "load"}, "extent": AREA}},
            "time": {"process_id": "filter_temporal", "arguments": {"data": {"from_node": "bbox"}, "extent": JUNE}},
            "bands": {"process_id": "filter_bands", "arguments": {"data": {"from_node": "time"},
                                                                   "bands": ["B08", "B04"]}, "result": True}}


def _with_arguments() -> dict:
    return {"load": {"process_id": "load_collection", "result": True, "arguments": {
        "id": DEMO_S2_COLLECTION, "spatial_extent": AREA, "temporal_extent": JUNE, "bands": ["B08", "B04"]}}}


def _context(live_server) -> RunContext:
    return RunContext(services=live_server.services, api_root=live_server.url, max_pixels=None)


def test_filters_load_what_load_arguments_load(live_server):
    filtered_context, loaded_context, unpushed_context = (_context(live_server) for _ in range(3))
    filtered, _, _ = evaluate({"process_graph": _with_filters()}, live_server.services.implementations,
                              filtered_context)
    loaded, _, _ = evaluate({"process_graph": _with_arguments()}, live_server.services.implementations,
                            loaded_context)
    assert filtered_context.input_values == loaded_context.input_values == loaded.size
    assert list(filtered["bands"].values) == ["B08", "B04"] and filtered.sizes == loaded.sizes
    np.testing.assert_array_equal(filtered.values, loaded.values)

    # the same graph evaluated as written: every band of every date of the whole tile is read first
    Executor(live_server.services.implementations, unpushed_context).run(Graph.parse(_with_filters()), {})
    assert unpushed_context.input_values > 100 * loaded_context.input_values


def test_the_sync_size_limit_counts_the_filtered_extent(session_data_dir):
    from backend.app import create_app
    from backend.settings import load_settings
    from tests.conftest import LiveServer

    server = LiveServer(create_app(load_settings(data_dir=session_data_dir, sync_max_pixels=200_000)))
    try:
        connection = openeo.connect(server.url).authenticate_basic(*server.new_user())
        whole = connection.load_collection(DEMO_S2_COLLECTION, bands=["B04"])  # the whole tile: over the limit
        with pytest.raises(openeo.rest.OpenEoApiError) as caught:
            whole.filter_temporal(*JUNE).download(format="JSON")
        assert (caught.value.http_status_code, caught.value.code) == (400, "ProcessGraphComplexity")
        assert "'t': 5, 'bands': 1" in caught.value.message  # counted after the pushed filter: June's dates
        cube = whole.filter_bbox(**AREA).filter_temporal(*JUNE)  # 96 x 84 px x 5 dates: under it
        document = json.loads(cube.reduce_dimension("t", "mean").download(format="JSON"))
        values = np.array(document["data"], dtype=float)
        assert values.shape == (1, 84, 96) and np.isfinite(values).all()
    finally:
        server.stop()
