"""GET / (federation extension 0.1.0 and 0.2.0, `federation` with live statuses), /conformance, /health,
the two-backend rule, and the account routes of the aggregator's app."""

from __future__ import annotations

import pytest
import requests

from aggregator.app import create_app
from aggregator.settings import FederationConfigError
from tests.aggregator.app.conftest import settings_for, wait_until

FEDERATION_0_1 = "https://api.openeo.org/extensions/federation/0.1.0"
FEDERATION_0_2 = "https://api.openeo.org/extensions/federation/0.2.0"


def test_capabilities_describe_the_federation(aggregator, fakes):
    wait_until(lambda: all(b.get("status") == "online"
                           for b in requests.get(f"{aggregator.url}/", timeout=5).json()["federation"].values()))
    document = requests.get(f"{aggregator.url}/", timeout=5).json()
    assert (document["api_version"], document["id"], document["title"]) == ("1.2.0", "openeo-federation",
                                                                            "openEO federation")
    assert {FEDERATION_0_1, FEDERATION_0_2} <= set(document["conformsTo"])
    assert document["billing"]["currency"] == "credits" and document["billing"]["default_plan"] == "free"
    federation = document["federation"]
    assert sorted(federation) == ["b1", "b2"]
    for backend_id, entry in federation.items():
        assert entry["url"] == fakes[backend_id].url and entry["title"] == backend_id
        assert entry["status"] == "online"
        assert entry["last_successful_check"] and entry["last_status_check"]
        assert (entry["experimental"], entry["deprecated"]) == (False, False)
    conformance = requests.get(f"{aggregator.url}/conformance", timeout=5).json()["conformsTo"]
    assert {FEDERATION_0_1, FEDERATION_0_2} <= set(conformance)
    well_known = requests.get(f"{aggregator.root}/.well-known/openeo", timeout=5).json()
    assert well_known["versions"][0]["url"] == f"{aggregator.url}/"


def test_an_outage_shows_in_capabilities_and_health(aggregator, fakes):
    wait_until(lambda: requests.get(f"{aggregator.root}/health", timeout=5).status_code == 200)
    fakes["b1"].stop()
    entry = wait_until(lambda: (e := requests.get(f"{aggregator.url}/", timeout=5).json()["federation"]["b1"])
                       .get("status") == "offline" and e)
    assert entry["last_successful_check"] <= entry["last_status_check"]  # whole seconds
    health = requests.get(f"{aggregator.root}/health", timeout=5)
    assert health.status_code == 200  # b2 is still up
    assert health.json()["backends"] == {"b1": "offline", "b2": "online"}

    fakes["b2"].stop()
    wait_until(lambda: requests.get(f"{aggregator.root}/health", timeout=5).status_code == 503)
    health = requests.get(f"{aggregator.root}/health", timeout=5).json()
    assert (health["status"], health["database"], health["backends"]["b2"]) == ("unavailable", "ok", "offline")

    fakes["b1"].start()
    wait_until(lambda: requests.get(f"{aggregator.root}/health", timeout=5).status_code == 200)
    assert requests.get(f"{aggregator.url}/", timeout=5).json()["federation"]["b1"]["status"] == "online"


def test_fewer_than_two_backends_refuse_to_start(tmp_path, fakes):
    with pytest.raises(FederationConfigError, match="at least 2 backends; configured: b1"):
        create_app(settings_for(tmp_path, {"b1": fakes["b1"].url}))


def test_login_and_me_show_the_federation_balance(aggregator):
    name, password = aggregator.new_user()
    login = aggregator.login(name, password)
    # the fake backends have no /credentials/basic: the login works at the aggregator, and says where not
    assert login["federation:missing"] == ["b1", "b2"]
    me = requests.get(f"{aggregator.url}/me", headers={"Authorization": f"Bearer basic//{login['access_token']}"},
                      timeout=5).json()
    assert (me["name"], me["budget"], me["default_plan"]) == (name, 1000, "free")
    wrong = requests.get(f"{aggregator.url}/credentials/basic", auth=(name, "wrong"), timeout=30)
    assert (wrong.status_code, wrong.json()["code"]) == (403, "CredentialsInvalid")
    anonymous = requests.get(f"{aggregator.url}/me", timeout=5)
    assert (anonymous.status_code, anonymous.json()["code"]) == (401, "AuthenticationRequired")


def test_job_listing_answers_with_the_backends_the_login_failed_at_missing(aggregator):
    headers = aggregator.auth_headers(*aggregator.new_user())
    response = requests.get(f"{aggregator.url}/jobs", headers=headers, timeout=5)
    assert response.status_code == 200, response.text
    assert (response.json()["jobs"], response.json()["federation:missing"]) == ([], ["b1", "b2"])
