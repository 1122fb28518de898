"""Admin routes need the admin role, generated from the route tables of the aggregator and the backend.

Every route × method of each app is either in the openEO API (openapi.yaml: a user's route, which the
isolation suite covers), or declared here: NOT_ADMIN (with the reason), or ADMIN. A route that is none of
these fails the suite until it is classified, and every route of the aggregator's admin blueprint must be
ADMIN. Each ADMIN route is called without a token (401 AuthenticationRequired), by a user who is not an
administrator (403 PermissionsInsufficient, naming the setting that grants it, and without any effect:
the user's requests name real backends and a valid registration), and by an administrator (its answer).
The backend has no admin routes today (credits and users are managed with its CLI).
"""

from __future__ import annotations

import re

import pytest
import requests
import yaml
from werkzeug.routing import Rule

from aggregator.onboarding.openapi import SPEC_PATH
from tests.aggregator.app.conftest import AggregatorServer, settings_for
from tests.conftest import API
from tests.support.fake_backends import FakeBackend

ADMIN_USER = ("fed-admin", "admin-password")
# Routes outside the openEO API that are not admin routes, and why.
NOT_ADMIN = {
    "static": "Flask's static files (none are served)",
    "well_known.well_known": "discovery: /.well-known/openeo",
    "health.health": "liveness for load balancers",
    "signed_results.signed_results": "a job's results by HMAC-signed URL (the signature authorises)",
    "signed_results.download_asset": "a result file by HMAC-signed URL",
    "signed_results.result_item": "a result item by HMAC-signed URL",
    "public_udps.catalogue": "published UDPs (openEO's /processes/{namespace} is ahead of 1.2)",
    "public_udps.describe": "one published UDP",
    "web_services.tile": "map tiles by the service's unguessable id (map clients send no token)",
}
# The aggregator's admin routes: (path variables, body, the administrator's status and code).
ADMIN = {
    "federation_admin.list_backends": ({}, None, 200, None),
    "federation_admin.add_backend": ({}, {"url": "not a url"}, 400, "BadRequest"),
    "federation_admin.describe_backend": ({"backend_id": "b1"}, None, 200, None),
    "federation_admin.remove_backend": ({"backend_id": "b1"}, None, 409, "BackendRemovalRefused"),
    "federation_admin.check_backend": ({"backend_id": "nobody"}, None, 404, "BackendNotFound"),
    "federation_admin.usage_report": ({}, None, 200, None),
    "federation_admin.list_conflicts": ({}, None, 200, None),
}
ADMIN_BLUEPRINT = "federation_admin."


def spec_routes() -> set[tuple[str, str]]:
    """(path with every variable as {}, METHOD) of the openEO API."""
    paths = yaml.safe_load(SPEC_PATH.read_text())["paths"]
    return {(re.sub(r"\{[^}]+\}", "{}", path), method.upper()) for path, item in paths.items() for method in item
            if method in ("get", "post", "put", "patch", "delete")}


def route_methods(rule: Rule) -> list[str]:
    return sorted(rule.methods - {"HEAD", "OPTIONS"})


def unclassified(app, admin: dict) -> list[str]:
    """Routes outside the openEO API that are neither NOT_ADMIN nor ``admin``."""
    spec = spec_routes()
    found = []
    for rule in app.url_map.iter_rules():
        path = re.sub(r"<[^>]+>", "{}", rule.rule[len(API):] if rule.rule.startswith(API) else rule.rule)
        for method in route_methods(rule):
            if rule.rule.startswith(API) and (path.rstrip("/") or "/", method) in spec:
                continue
            if rule.endpoint not in NOT_ADMIN and rule.endpoint not in admin:
                found.append(f"{method} {rule.rule} ({rule.endpoint})")
    return found


@pytest.fixture(scope="module")
def aggregator(tmp_path_factory):
    with FakeBackend("b1") as one, FakeBackend("b2") as two:
        settings = settings_for(tmp_path_factory.mktemp("admin-routes"), {"b1": one.url, "b2": two.url},
                                admins=[ADMIN_USER[0]])
        server = AggregatorServer(settings)
        try:
            server.new_user(ADMIN_USER[1], name=ADMIN_USER[0])
            yield server, {"b1": one, "b2": two}
        finally:
            server.stop()


def admin_rules(app) -> list[Rule]:
    return [rule for rule in app.url_map.iter_rules() if rule.endpoint in ADMIN]


def fill(rule: Rule, values: dict[str, str]) -> str:
    return re.sub(r"<(?:[a-z]+:)?([a-z_]+)>", lambda m: values[m.group(1)], rule.rule)


def test_every_route_of_both_apps_is_classified(aggregator, live_server):
    server, _ = aggregator
    assert unclassified(server.app, ADMIN) == [], "classify these routes: ADMIN (and test them) or NOT_ADMIN"
    assert unclassified(live_server.app, {}) == [], "classify these routes: the backend has no admin role yet"
    blueprint = {rule.endpoint for rule in server.app.url_map.iter_rules() if rule.endpoint.startswith(ADMIN_BLUEPRINT)}
    assert blueprint == set(ADMIN)  # every admin route is tested below, and no ADMIN entry is stale
    assert not any(rule.endpoint.startswith(ADMIN_BLUEPRINT) for rule in live_server.app.url_map.iter_rules())
    endpoints = {rule.endpoint for app in (server.app, live_server.app) for rule in app.url_map.iter_rules()}
    assert set(NOT_ADMIN) <= endpoints, "drop the entries of routes that are gone"


def test_admin_routes_need_the_admin_role(aggregator):
    server, fakes = aggregator
    admin = server.auth_headers(*ADMIN_USER)
    name, password = server.new_user()
    user = server.auth_headers(name, password)
    intruder = {"id": "intruder", "url": fakes["b2"].url, "force": True}  # a registration that would succeed
    calls = [(method, rule) for rule in admin_rules(server.app) for method in route_methods(rule)]
    assert len(calls) == len(ADMIN)
    for method, rule in calls:
        values, admin_body, status, code = ADMIN[rule.endpoint]
        real = {key: "b1" for key in rule.arguments}  # the user's requests name real backends
        url = server.root + fill(rule, real)
        body = intruder if (method, rule.endpoint) == ("POST", "federation_admin.add_backend") else None

        anonymous = requests.request(method, url, json=body, timeout=30)
        assert (anonymous.status_code, anonymous.json()["code"]) == (401, "AuthenticationRequired"), rule.rule
        refused = requests.request(method, url, json=body, headers=user, timeout=30)
        assert (refused.status_code, refused.json()["code"]) == (403, "PermissionsInsufficient"), rule.rule
        assert refused.json()["message"] == (
            f"User '{name}' is not an administrator of this federation: the operator lists administrators "
            "(names or user ids) in the `admins` setting."), rule.rule
        assert set(refused.json()) >= {"id", "code", "message", "links"}

        allowed = requests.request(method, server.root + fill(rule, values), json=admin_body, headers=admin,
                                   timeout=60)
        assert allowed.status_code == status, (rule.rule, allowed.text[:300])
        if code is not None:
            assert allowed.json()["code"] == code, (rule.rule, allowed.text[:300])

    # nothing the user or the anonymous caller sent had an effect
    listing = requests.get(f"{server.url}/federation/backends", headers=admin, timeout=30).json()
    assert sorted(b["id"] for b in listing["backends"]) == ["b1", "b2"] and listing["departed"] == []
