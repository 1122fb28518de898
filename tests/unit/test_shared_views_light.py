"""The shared views and their service interfaces import no engine and nothing of the backend, so the
aggregator can serve them with the light dependencies only (issue 10, Packaging)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
HEAVY = ("dask", "distributed", "xarray", "rasterio", "odc", "geopandas", "pandas", "numpy", "shapely", "pyproj",
         "openeo_processes_dask", "openeo_pg_parser_networkx", "backend")
SCRIPT = r"""
import json, sys
import apicore.services, apicore.views
print(json.dumps(sorted(sys.modules)))
"""


def test_importing_the_shared_views_loads_no_engine_and_no_backend():
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    done = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=120, env=env,
                          cwd=ROOT)
    assert done.returncode == 0, done.stderr
    loaded = json.loads(done.stdout.splitlines()[-1])
    assert "apicore.views" in loaded and "flask" in loaded  # the import really happened
    heavy = [m for m in loaded if any(m == h or m.startswith(h + ".") for h in HEAVY)]
    assert heavy == []
