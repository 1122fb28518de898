"""The aggregator's identity, money and storage modules load nothing of the processing stack: checked in a
fresh interpreter that also builds the parts (open the DB, authenticate, charge), since imports may be lazy."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[3]
HEAVY = ("dask", "distributed", "xarray", "rasterio", "odc", "geopandas", "numpy", "pandas", "pystac_client",
         "backend.processing", "backend.jobs", "backend.catalog")

SCRIPT = """
import json, sys
from aggregator.accounting import FederationAccounting
from aggregator.auth import build_auth
from aggregator.federation.wiring import build_federation
from aggregator.settings import AggregatorSettings
from aggregator.storage import open_aggregator_database
from aggregator.storage.backend_store import DbBackendStore

settings = AggregatorSettings(data_dir=sys.argv[1], backends=[
    {"id": "a", "url": "http://127.0.0.1:9/openeo/1.2/"}, {"id": "b", "url": "http://127.0.0.1:9/b/"}])
db = open_aggregator_database(settings)
federation = build_federation(settings, store=DbBackendStore(db))
auth = build_auth(settings, db, federation)
auth.users.add("ada", "pw")
token = auth.signer.issue(auth.users.check_password("ada", "pw").user_id, {}, {})[0]
caller = auth.authenticate("Bearer basic//" + token)
accounting = FederationAccounting(db, settings.plans, settings.free_credits)
accounting.charge_result(caller, "a", "r1", "1")
accounting.usage_report()
heavy = sorted(m for m in sys.modules if any(m == h or m.startswith(h + ".") for h in HEAVY))
print(json.dumps(heavy))
"""


def test_no_heavy_module_is_loaded(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    done = subprocess.run([sys.executable, "-c", f"HEAVY = {HEAVY!r}\n" + SCRIPT, str(tmp_path)], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout.strip().splitlines()[-1]) == []


APP_SCRIPT = """
import json, sys
from aggregator.app import create_app
from aggregator.settings import AggregatorSettings

settings = AggregatorSettings(data_dir=sys.argv[1], backends=[
    {"id": "a", "url": "http://127.0.0.1:9/openeo/1.2/"}, {"id": "b", "url": "http://127.0.0.1:9/b/"}])
app = create_app(settings)
client = app.test_client()
for path in ("/openeo/1.2/", "/health", "/openeo/1.2/collections", "/openeo/1.2/processes"):
    client.get(path)
client.post("/openeo/1.2/validation", json={"process_graph": {"x": {"process_id": "add", "arguments": {"x": 1, "y": 2},
                                                                   "result": True}}})
app.extensions["openeo_aggregator"].stop()
heavy = sorted(m for m in sys.modules if any(m == h or m.startswith(h + ".") for h in HEAVY))
print(json.dumps(heavy))
"""


def test_the_app_loads_nothing_heavy(tmp_path):
    """The whole app, built and answering (backends down), as `openeo-aggregator serve` runs it."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    done = subprocess.run([sys.executable, "-c", f"HEAVY = {HEAVY!r}\n" + APP_SCRIPT, str(tmp_path)], cwd=REPO,
                          env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout.strip().splitlines()[-1]) == []
