"""A partner's backend for the onboarding tests: a real `openeo-backend serve` (with its job runner, one
finished batch job of USER, an OIDC provider configured) that is not yet a member of any federation."""

from __future__ import annotations

import time
from dataclasses import dataclass

import pytest
import requests

from backend.demo import DEMO_DEM_COLLECTION
from tests.support.federation import ServerProcess, start_backend, wait_ready

USER = ("partner-user", "partner-password")
ADMIN = ("fed-admin", "admin-password")
ISSUER = "http://127.0.0.1:9/realms/federation"  # never contacted: the check compares issuers only
OIDC = [{"id": "fedidp", "issuer": ISSUER, "title": "Federation IdP", "audience": "openeo-federation"}]


@dataclass
class Partner:
    server: ServerProcess
    finished_job: str

    @property
    def url(self) -> str:
        return self.server.url


def bearer(url: str, user: tuple[str, str]) -> dict[str, str]:
    token = requests.get(f"{url}/credentials/basic", auth=user, timeout=30).json()["access_token"]
    return {"Authorization": f"Bearer basic//{token}"}


def run_tiny_job(url: str, user: tuple[str, str], timeout: float = 120) -> str:
    """A finished batch job of ``user`` (a few DEM pixels as GTiff), for the signed-URL check."""
    headers = bearer(url, user)
    graph = {"load": {"process_id": "load_collection", "arguments": {
                 "id": DEMO_DEM_COLLECTION,
                 "spatial_extent": {"west": 11.3638, "south": 46.4917, "east": 11.3642, "north": 46.4921},
                 "temporal_extent": ["2022-01-01", "2023-01-01"]}},
             "save": {"process_id": "save_result", "arguments": {"data": {"from_node": "load"}, "format": "GTiff"},
                      "result": True}}
    created = requests.post(f"{url}/jobs", json={"process": {"process_graph": graph}}, headers=headers, timeout=30)
    assert created.status_code == 201, created.text
    job_id = created.headers["OpenEO-Identifier"]
    assert requests.post(f"{url}/jobs/{job_id}/results", headers=headers, timeout=30).status_code == 202
    deadline = time.monotonic() + timeout
    status = None
    while time.monotonic() < deadline:
        status = requests.get(f"{url}/jobs/{job_id}", headers=headers, timeout=30).json()["status"]
        if status in ("finished", "error", "canceled"):
            break
        time.sleep(0.5)
    logs = requests.get(f"{url}/jobs/{job_id}/logs", headers=headers, timeout=30).json().get("logs")
    assert status == "finished", (status, logs)
    return job_id


@pytest.fixture(scope="package")
def partner(demo_catalog_dir, tmp_path_factory) -> Partner:
    base = tmp_path_factory.mktemp("partner")
    server = start_backend(base / "c", "C", [DEMO_DEM_COLLECTION], catalog=demo_catalog_dir, users=[USER, ADMIN],
                           job_runner=True, oidc_providers=OIDC)
    try:
        wait_ready([server])
        yield Partner(server, run_tiny_job(server.url, USER))
    finally:
        server.stop()
