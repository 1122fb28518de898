"""Credits through the API: plans in the capabilities, the balance in /me, costs of synchronous requests."""

from __future__ import annotations

import requests

from backend.demo import DEMO_S2_COLLECTION

AREA = {"west": 679720, "south": 5151080, "east": 680680, "north": 5151920, "crs": 32632}
NDVI = {"process_graph": {
    "load": {"process_id": "load_collection", "arguments": {
        "id": DEMO_S2_COLLECTION, "spatial_extent": AREA, "temporal_extent": ["2022-06-01", "2022-07-01"],
        "bands": ["B04", "B08"]}},
    "ndvi": {"process_id": "ndvi", "arguments": {"data": {"from_node": "load"}, "nir": "B08", "red": "B04"}},
    "save": {"process_id": "save_result", "arguments": {"data": {"from_node": "ndvi"}, "format": "GTiff"},
             "result": True}}}


def balance(api, headers) -> float:
    return requests.get(f"{api}/me", headers=headers).json()["budget"]


def test_capabilities_list_the_plans(api):
    billing = requests.get(f"{api}/").json()["billing"]
    assert billing["currency"] == "credits" and billing["default_plan"] == "free"
    assert billing["plans"] == [{"name": "free", "description": billing["plans"][0]["description"], "paid": False}]


def test_sync_request_costs_what_the_header_says(api, live_server):
    headers = live_server.auth_headers()
    me = requests.get(f"{api}/me", headers=headers).json()
    assert (me["budget"], me["default_plan"]) == (1000, "free")
    response = requests.post(f"{api}/result", json={"process": NDVI}, headers=headers)
    assert response.status_code == 200
    costs = float(response.headers["OpenEO-Costs"])
    plan = live_server.services.settings.plans[0]
    input_megapixels = 5 * 2 * 84 * 96 / 1e6
    assert costs >= plan.fixed_fee + input_megapixels * plan.per_megapixel - 1e-3
    assert balance(api, headers) == round(1000 - costs, 3)
    ref = f"sync-{response.headers['OpenEO-Identifier']}"
    assert live_server.services.ledger.charged(ref) == costs and live_server.services.ledger.held(ref) == 0


def test_budget_caps_the_charge(api, live_server):
    headers = live_server.auth_headers()
    response = requests.post(f"{api}/result", json={"process": NDVI, "budget": 1.0}, headers=headers)
    assert response.status_code == 200 and float(response.headers["OpenEO-Costs"]) <= 1.0
    assert balance(api, headers) >= 999


def test_bad_budgets_and_plans(api, live_server):
    headers = live_server.auth_headers()
    for budget, code in [(-1, "BudgetInvalid"), ("ten", "BudgetInvalid"), (0.5, "BudgetInvalid"),
                         (True, "BudgetInvalid")]:
        response = requests.post(f"{api}/result", json={"process": NDVI, "budget": budget}, headers=headers)
        assert (response.status_code, response.json()["code"]) == (400, code), budget
    response = requests.post(f"{api}/result", json={"process": NDVI, "plan": "gold"}, headers=headers)
    assert response.status_code == 400 and response.json()["code"] == "BillingPlanInvalid"
    assert "free" in response.json()["message"]
    assert balance(api, headers) == 1000  # nothing charged


def test_zero_balance_is_402(api, live_server):
    name, password = live_server.new_user()
    headers = {"Authorization": f"Bearer basic//{live_server.basic_token(name, password)}"}
    user_id = requests.get(f"{api}/me", headers=headers).json()["user_id"]
    live_server.services.ledger.grant(user_id, -1000)
    response = requests.post(f"{api}/result", json={"process": NDVI}, headers=headers)
    assert response.status_code == 402 and response.json()["code"] == "PaymentRequired"
    assert "balance of 0 credits" in response.json()["message"]


def test_failed_request_caused_by_the_user_charges_no_fee(api, live_server):
    headers = live_server.auth_headers()
    broken = {"process_graph": {"load": {"process_id": "load_collection", "arguments": {
        "id": "NOPE", "spatial_extent": None, "temporal_extent": None}, "result": True}}}
    response = requests.post(f"{api}/result", json={"process": broken}, headers=headers)
    assert response.status_code == 404
    assert balance(api, headers) == 1000
