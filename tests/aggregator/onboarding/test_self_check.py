"""The onboarding self-check against a real `openeo-backend serve` (every check passes) and against
servers that are not usable backends (each check fails, saying why)."""

from __future__ import annotations

import time

import pytest

from aggregator.onboarding.candidate import CheckCredentials, CheckOptions
from aggregator.onboarding.self_check import CHECKS, run_self_check
from tests.aggregator.onboarding.conftest import ISSUER, USER
from tests.support.fake_backends import FakeBackend, HangingServer, RefusingPort

ALL = [name for name, _ in CHECKS]
METADATA_CHECKS = ["well_known", "api_version", "health", "collections", "processes", "file_formats", "cors"]
FAST = CheckOptions(connect_timeout=1, timeout=1, result_timeout=5, deadline=8)


def statuses(report) -> dict[str, str]:
    return {check.name: check.status for check in report.checks}


def details(report) -> dict[str, str]:
    return {check.name: check.detail for check in report.checks}


def test_a_real_backend_passes_every_check(partner):
    report = run_self_check(partner.url, credentials=CheckCredentials(*USER),
                            options=CheckOptions(federation_issuers=(ISSUER + "/",)))
    assert [c.name for c in report.checks] == ALL
    assert statuses(report) == {name: "passed" for name in ALL}, report.render()
    detail = details(report)
    assert detail["well_known"].endswith(f"lists {partner.url}/ (api_version 1.2.0)")
    assert detail["oidc_issuer"] == f"trusts the federation's issuer {ISSUER} (provider 'fedidp')"
    assert "load_collection 'DEM_DEMO'" in detail["sync_result"] and "bytes of image/tiff" in detail["sync_result"]
    assert detail["signed_urls"].startswith(f"asset '") and f"of job {partner.finished_job} downloads without " \
                                                               "credentials (HTTP 200" in detail["signed_urls"]
    assert detail["collections"].startswith("1 collection(s) listed; listing and descriptions of DEM_DEMO valid")
    assert report.passed


def test_without_credentials_the_user_checks_are_skipped_with_the_reason(partner):
    report = run_self_check(partner.url)
    assert statuses(report) == {**{name: "passed" for name in METADATA_CHECKS}, "oidc_issuer": "skipped",
                                "sync_result": "skipped", "signed_urls": "skipped"}
    assert details(report)["sync_result"].startswith("no credentials given for the check")
    assert details(report)["oidc_issuer"].startswith("the federation has no OIDC providers configured")
    assert report.passed


def test_wrong_credentials_and_a_foreign_issuer_fail(partner):
    report = run_self_check(partner.url, credentials=CheckCredentials(USER[0], "wrong"),
                            options=CheckOptions(federation_issuers=("https://other.example/realm",)))
    detail = details(report)
    assert statuses(report)["sync_result"] == statuses(report)["signed_urls"] == "failed"
    assert detail["sync_result"].startswith("logging in with the given credentials failed: answered HTTP 403 "
                                            "CredentialsInvalid")
    assert detail["oidc_issuer"] == (f"it trusts {ISSUER}; the federation's issuers are https://other.example/realm: "
                                     "add one of them to its OIDC providers (GET /credentials/oidc) so users' tokens "
                                     "pass through")
    assert not report.passed


def test_an_unreachable_port_fails_every_check_with_connection_refused():
    with RefusingPort() as port:
        report = run_self_check(port.url, credentials=CheckCredentials(*USER), options=FAST)
    assert statuses(report) == {**{name: "failed" for name in ALL}, "oidc_issuer": "skipped"}
    for name, detail in details(report).items():
        if name != "oidc_issuer":
            assert "not reachable (connection refused)" in detail, (name, detail)
    assert details(report)["well_known"].endswith("serve the openEO well-known document at the server root, "
                                                  "listing this API root under `versions`")


@pytest.mark.parametrize("behaviour, expected, failing", [
    ("html_500", "answered HTTP 500 (text/html) without an openEO error", METADATA_CHECKS),
    # /health only has to answer 200, and CORS headers are all the fake omits
    ("invalid_json", "not JSON", [name for name in METADATA_CHECKS if name != "health"]),
])
def test_a_server_answering_html_or_garbage_fails_each_check(behaviour, expected, failing):
    with FakeBackend("junk") as server:
        server.behaviour = behaviour
        report = run_self_check(server.url, options=FAST)
    status = statuses(report)
    assert [name for name in ALL if status[name] == "failed"] == failing
    for name in ("well_known", "api_version", "collections", "processes", "file_formats"):
        assert expected in details(report)[name], (name, details(report)[name])
    if behaviour == "html_500":
        assert details(report)["cors"].startswith("the preflight OPTIONS")
        assert "answered HTTP 500" in details(report)["health"]


def test_a_web_server_that_is_no_openeo_backend_fails_with_404s():
    with FakeBackend("web") as server:
        server.documents = {}  # every path: 404 (with an openEO-shaped error, which proves nothing)
        report = run_self_check(server.url, options=FAST)
    detail = details(report)
    assert detail["well_known"].startswith(f"GET {server.root}/.well-known/openeo answered HTTP 404 NotFound")
    assert detail["api_version"].startswith(f"GET {server.url} (capabilities) answered HTTP 404 NotFound")
    assert detail["health"] == (f"GET {server.root}/health answered HTTP 404 NotFound: Resource not found.; "
                                f"GET {server.url}health answered HTTP 404 NotFound: Resource not found.: serve an "
                                "unauthenticated /health (200 when healthy)")
    assert not report.passed


def test_invalid_metadata_and_missing_cors_are_named():
    """An openEO-looking server whose documents break the schemas (the fake's minimal documents)."""
    with FakeBackend("sloppy") as server:
        server.documents[".well-known/openeo"] = {"versions": [{"url": server.url, "api_version": "1.2.0"}]}
        server.documents["health"] = {"status": "ok"}
        report = run_self_check(server.url, options=FAST)
    status, detail = statuses(report), details(report)
    assert status["well_known"] == status["health"] == status["api_version"] == "passed"
    assert detail["api_version"] == "api_version 1.2.0, backend_version fake-1, 1 endpoints"
    assert detail["collections"].startswith("GET /collections is not valid openEO: collections[0]: "
                                            "'stac_version' is a required property")
    assert detail["processes"].startswith("GET /processes is not valid openEO: processes[0]: 'description' is a "
                                          "required property")
    assert detail["cors"] == (f"the preflight OPTIONS {server.url}collections answered HTTP 501 "
                              "(text/html;charset=utf-8) without an openEO error: answer OPTIONS on every endpoint "
                              "with 2xx and Access-Control-Allow-* headers")


def test_a_hanging_server_cannot_hold_the_check():
    with HangingServer() as server:
        started = time.monotonic()
        report = run_self_check(f"http://127.0.0.1:{server.port}/openeo/1.2/", credentials=CheckCredentials(*USER),
                                options=FAST)
        elapsed = time.monotonic() - started
    assert elapsed < 20  # the defect would be a hang (deadline 8 s, read timeouts 1 s)
    assert statuses(report) == {**{name: "failed" for name in ALL}, "oidc_issuer": "skipped"}
    assert "did not answer within 1 s" in details(report)["api_version"]


def test_a_url_that_cannot_be_an_api_root_is_one_failed_check():
    report = run_self_check("ftp://partner.example/openeo")
    assert [c.to_dict() for c in report.checks] == [{
        "name": "url", "status": "failed",
        "detail": "'ftp://partner.example/openeo' cannot be a backend's API root: Value error, url must be an "
                  "http(s) URL of the backend's versioned API root, not 'ftp://partner.example/openeo'"}]
