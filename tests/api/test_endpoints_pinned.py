"""The capabilities ``endpoints`` list, pinned: the shared views (apicore/views/) plus the backend's own
blueprints must register exactly the routes the backend offered before they were split (and those
added since: the public UDP catalogue, secondary web services)."""

from __future__ import annotations

import requests

from backend.app import create_app
from backend.settings import OidcProvider, load_settings
from tests.conftest import LiveServer

ENDPOINTS = [
    {"path": "/collections", "methods": ["GET"]},
    {"path": "/collections/{collection_id}", "methods": ["GET"]},
    {"path": "/collections/{collection_id}/queryables", "methods": ["GET"]},
    {"path": "/conformance", "methods": ["GET"]},
    {"path": "/credentials/basic", "methods": ["GET"]},
    {"path": "/file_formats", "methods": ["GET"]},
    {"path": "/files", "methods": ["GET"]},
    {"path": "/files/{path}", "methods": ["DELETE", "GET", "PUT"]},
    {"path": "/jobs", "methods": ["GET", "POST"]},
    {"path": "/jobs/{job_id}", "methods": ["DELETE", "GET", "PATCH"]},
    {"path": "/jobs/{job_id}/estimate", "methods": ["GET"]},
    {"path": "/jobs/{job_id}/logs", "methods": ["GET"]},
    {"path": "/jobs/{job_id}/results", "methods": ["DELETE", "GET", "POST"]},
    {"path": "/jobs/{job_id}/results/assets/{name}", "methods": ["GET"]},
    {"path": "/jobs/{job_id}/results/collection.json", "methods": ["GET"]},
    {"path": "/jobs/{job_id}/results/items/{name}", "methods": ["GET"]},
    {"path": "/me", "methods": ["GET"]},
    {"path": "/process_graphs", "methods": ["GET"]},
    {"path": "/process_graphs/{process_graph_id}", "methods": ["DELETE", "GET", "PUT"]},
    {"path": "/processes", "methods": ["GET"]},
    {"path": "/public/process_graphs", "methods": ["GET"]},
    {"path": "/public/process_graphs/{owner_id}/{process_id}", "methods": ["GET"]},
    {"path": "/result", "methods": ["POST"]},
    {"path": "/service_types", "methods": ["GET"]},
    {"path": "/services", "methods": ["GET", "POST"]},
    {"path": "/services/{service_id}", "methods": ["DELETE", "GET", "PATCH"]},
    {"path": "/services/{service_id}/logs", "methods": ["GET"]},
    {"path": "/services/{service_id}/tiles/{z}/{x}/{y}", "methods": ["GET"]},
    {"path": "/udf_runtimes", "methods": ["GET"]},
    {"path": "/validation", "methods": ["POST"]},
]


def test_endpoints_are_exactly_the_pinned_list(api):
    assert requests.get(f"{api}/").json()["endpoints"] == ENDPOINTS


def test_oidc_providers_add_exactly_the_oidc_route(tmp_path):
    provider = OidcProvider(id="idp", issuer="http://127.0.0.1:9/", title="IdP", audience="openeo")
    server = LiveServer(create_app(load_settings(data_dir=tmp_path, demo_catalog=False, oidc_providers=[provider])))
    try:
        endpoints = requests.get(f"{server.url}/").json()["endpoints"]
    finally:
        server.stop()
    assert endpoints == sorted(ENDPOINTS + [{"path": "/credentials/oidc", "methods": ["GET"]}],
                               key=lambda endpoint: endpoint["path"])
