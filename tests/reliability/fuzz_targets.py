"""The servers the schema fuzzing suite targets, all real and on 127.0.0.1 in this process: two backends
(A: Sentinel-2 and DEM demo collections, B: Sentinel-1 and DEM; one demo catalog linked into both data
dirs, no batch-job runner) and the aggregator in front of them, with one basic-auth user on all three;
and the items an authenticated run addresses by id (a job, a UDP, a file, a service)."""

from __future__ import annotations

import base64
import threading
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import requests
from werkzeug.serving import make_server

from aggregator.servers import link_catalog
from backend.app import create_app
from backend.demo import DEMO_DEM_COLLECTION, DEMO_S1_COLLECTION, DEMO_S2_COLLECTION
from backend.settings import load_settings
from tests.conftest import API, LiveServer

USER = (f"fuzz-{uuid.uuid4().hex[:8]}", "fuzz-password")
# Bounds that keep a generated request cheap: a valid generated POST /result loads at most 1 megapixel
# (then it is refused with an openEO error), bodies of at most 64 KiB.
BACKEND_LIMITS = {"sync_max_pixels": 1_000_000, "max_request_bytes": 64 * 1024}
AGGREGATOR_TIMEOUTS = {"health_interval": 1.0, "health_recheck": 0.5, "health_timeout": 2.0, "connect_timeout": 1.0,
                       "metadata_timeout": 10.0, "fanout_deadline": 5.0, "jobs_listing_deadline": 5.0}
GRAPH = {"process_graph": {"a": {"process_id": "add", "arguments": {"x": 1, "y": 2}, "result": True}}}
SMALL_JOB = {"title": "fuzz seed", "process": {"process_graph": {
    "load": {"process_id": "load_collection", "arguments": {
        "id": DEMO_S2_COLLECTION, "bands": ["B04"], "temporal_extent": ["2022-06-01", "2022-06-05"],
        "spatial_extent": {"west": 679720, "east": 680080, "south": 5151560, "north": 5151920, "crs": 32632}}},
    "save": {"process_id": "save_result", "arguments": {"data": {"from_node": "load"}, "format": "GTiff"},
             "result": True}}}}


def start_backend(data_dir: Path, catalog: Path, backend_id: str, collections: list[str]) -> LiveServer:
    link_catalog(data_dir, catalog)
    settings = load_settings(data_dir=data_dir, backend_id=backend_id, demo_collections=collections, **BACKEND_LIMITS)
    server = LiveServer(create_app(settings))
    server.services.users.add(*USER)
    return server


def start_backends(base: Path, catalog: Path) -> tuple[LiveServer, LiveServer]:
    return (start_backend(base / "a", catalog, "A", [DEMO_S2_COLLECTION, DEMO_DEM_COLLECTION]),
            start_backend(base / "b", catalog, "B", [DEMO_S1_COLLECTION, DEMO_DEM_COLLECTION]))


class AggregatorServer:
    """The aggregator app (its health monitor running) behind a threaded werkzeug server."""

    def __init__(self, data_dir: Path, backends: dict[str, str]):
        from aggregator.app import create_app as create_aggregator
        from aggregator.settings import AggregatorSettings

        settings = AggregatorSettings(data_dir=data_dir, backends=[{"id": b, "url": u} for b, u in backends.items()],
                                      **AGGREGATOR_TIMEOUTS)
        self.app = create_aggregator(settings)
        self.parts = self.app.extensions["openeo_aggregator"]
        self.parts.auth.users.add(*USER)
        self._server = make_server("127.0.0.1", 0, self.app, threaded=True)
        self.url = f"http://127.0.0.1:{self._server.server_port}{API}"
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self._server.shutdown()
        self.parts.stop()


def bearer(url: str) -> dict[str, str]:
    """The headers of USER's basic-auth token at ``url``."""
    basic = base64.b64encode(f"{USER[0]}:{USER[1]}".encode()).decode()
    response = requests.get(f"{url}/credentials/basic", headers={"Authorization": f"Basic {basic}"}, timeout=30)
    response.raise_for_status()
    return {"Authorization": f"Bearer basic//{response.json()['access_token']}"}


@dataclass
class Seeds:
    """Path values of USER's existing items at one target; ``missing``: the kinds the target does not offer."""

    values: dict[str, str] = field(default_factory=lambda: {"collection_id": DEMO_S2_COLLECTION})
    missing: dict[str, str] = field(default_factory=dict)


def seed(url: str, headers: dict[str, str]) -> Seeds:
    """A job (created, not started), a UDP, a file and a service of USER, where the target offers them."""
    seeds = Seeds()

    def call(kind: str, method: str, path: str, **kwargs) -> requests.Response | None:
        response = requests.request(method, url + path, headers=headers, timeout=60, **kwargs)
        if response.status_code >= 300:
            seeds.missing[kind] = f"{response.status_code} {response.text[:200]}"
            return None
        return response

    if job := call("job", "POST", "/jobs", json=SMALL_JOB):
        seeds.values["job_id"] = job.headers["OpenEO-Identifier"]
    if call("udp", "PUT", "/process_graphs/fuzz_udp", json=GRAPH):
        seeds.values["process_graph_id"] = "fuzz_udp"
    if call("file", "PUT", "/files/fuzz/notes.txt", data=b"fuzz seed"):
        seeds.values["path"] = "fuzz/notes.txt"
    if service := call("service", "POST", "/services", json={"type": "XYZ", "title": "fuzz", "process": GRAPH}):
        seeds.values["service_id"] = service.headers["OpenEO-Identifier"]
    return seeds
