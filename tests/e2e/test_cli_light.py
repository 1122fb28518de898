"""CLI commands that need no engine import none of it: no Dask, xarray, GDAL, openeo-processes-dask.

Each command runs in a fresh interpreter through the real click entry point; afterwards the script
prints which of the heavy modules ended up in sys.modules. Before this was fixed, `users add` imported
the whole processing stack (~3 s, ~320 MB) and printed openeo-processes-dask's "Did not load machine
learning processes" warning.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
HEAVY = ("dask", "distributed", "xarray", "rasterio", "odc", "geopandas", "pandas", "numpy",
         "openeo_processes_dask", "openeo_pg_parser_networkx", "backend.processing", "backend.jobs")
SCRIPT = r"""
import json, sys
from backend.cli import main
try:
    main(sys.argv[2:], prog_name="openeo-backend")
except SystemExit as exit:
    code = exit.code
else:
    code = 0
heavy = json.loads(sys.argv[1])
print("\nLOADED " + json.dumps({"code": code, "heavy": sorted(m for m in sys.modules if m.split(".")[0] in heavy
                                                            or any(m.startswith(h + ".") or m == h for h in heavy))}))
"""


def run_light(*args: str) -> tuple[dict, str]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    done = subprocess.run([sys.executable, "-c", SCRIPT, json.dumps(HEAVY), *args], capture_output=True, text=True,
                          timeout=120, env=env)
    output = done.stdout + done.stderr
    line = next(line for line in done.stdout.splitlines() if line.startswith("LOADED "))
    return json.loads(line.removeprefix("LOADED ")), output


@pytest.mark.parametrize("command", [
    ["users", "add", "ann", "--password", "pw"],
    ["users", "list"],
    ["credits", "grant", "ann", "5"],
    ["credits", "balance", "ann"],
    ["credits", "report", "--format", "json"],
    ["--help"],
])
def test_engine_free_commands_import_no_engine(command, tmp_path):
    data_dir = ["--data-dir", str(tmp_path)] if command != ["--help"] else []
    if command[0] == "credits":
        run_light("users", "add", "ann", "--password", "pw", *data_dir)
    loaded, output = run_light(*command, *data_dir)
    assert loaded["code"] == 0, output
    assert loaded["heavy"] == [], f"{' '.join(command)} imported {loaded['heavy']}"
    assert "Did not load machine learning processes" not in output
