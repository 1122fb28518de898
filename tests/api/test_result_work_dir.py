"""POST /result writes its file into a temporary directory of its own: gone once the answer is sent.

Before the shared views, the directory was to be removed by a ``call_on_close`` callback of send_file's
response, which werkzeug never calls for such responses (their file wrapper goes to the server as is):
every synchronous request left its directory and result file behind in the temp dir.
"""

from __future__ import annotations

import tempfile

import requests

from backend.demo import DEMO_S2_COLLECTION
from tests.e2e.test_sync_processing import AREA

ADD = {"process_graph": {"a": {"process_id": "add", "arguments": {"x": 1, "y": 2}, "result": True}}}
GTIFF = {"process_graph": {
    "load": {"process_id": "load_collection", "arguments": {
        "id": DEMO_S2_COLLECTION, "spatial_extent": AREA, "temporal_extent": ["2022-06-01", "2022-06-03"],
        "bands": ["B04"]}},
    "save": {"process_id": "save_result", "arguments": {"data": {"from_node": "load"}, "format": "GTiff"},
             "result": True}}}


def test_no_work_dir_is_left_behind(live_server, api, tmp_path, monkeypatch):
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))  # the server runs in this process
    headers = live_server.auth_headers()
    answers = [requests.post(f"{api}/result", json={"process": process}, headers=headers) for process in (ADD, GTIFF)]
    assert [answer.status_code for answer in answers] == [200, 200]
    assert answers[0].json() == 3
    assert answers[1].content[:4] in (b"II*\x00", b"MM\x00*") and len(answers[1].content) == int(
        answers[1].headers["Content-Length"])
    assert sorted(path.name for path in tmp_path.iterdir()) == []
