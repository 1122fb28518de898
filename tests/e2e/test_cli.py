"""The command-line contract: `openeo-backend serve` (gunicorn) and `users add/list/remove`."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import openeo
import pytest
import requests

CLI = [str(Path(sys.executable).with_name("openeo-backend"))]


def run_cli(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(CLI + list(args), capture_output=True, text=True, timeout=120,
                          env={**os.environ, **(env or {})})


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_help_documents_every_setting():
    out = run_cli("--help").stdout
    for name in ("OPENEO_BACKEND_DATA_DIR", "OPENEO_BACKEND_DATABASE_URL", "OPENEO_BACKEND_OIDC_PROVIDERS",
                 "OPENEO_BACKEND_STAC_SOURCES", "OPENEO_BACKEND_PORT", "OPENEO_BACKEND_DEMO_COLLECTIONS"):
        assert name in out
    assert "SENTINEL2_L2A_DEMO, SENTINEL1_GRD_DEMO, DEM_DEMO" in out  # the demo collections one can choose


def test_users_commands(tmp_path):
    data = str(tmp_path)
    added = run_cli("users", "add", "bob", "--password", "pw1", "--data-dir", data)
    assert added.returncode == 0, added.stderr
    again = run_cli("users", "add", "bob", "--password", "pw2", "--data-dir", data)
    assert again.returncode != 0 and "exists already" in again.stderr
    listed = run_cli("users", "list", "--data-dir", data)
    assert listed.stdout.split("\t")[0] == "bob" and "basic" in listed.stdout
    files = tmp_path / "files" / listed.stdout.split("\t")[1] / "folder"
    files.mkdir(parents=True)
    (files / "upload.tif").write_bytes(b"data")
    assert run_cli("users", "remove", "bob", "--data-dir", data).returncode == 0
    assert not files.parent.exists()  # the user's uploaded files go with them
    assert run_cli("users", "list", "--data-dir", data).stdout == ""
    missing = run_cli("users", "remove", "bob", "--data-dir", data)
    assert missing.returncode != 0 and "no user 'bob'" in missing.stderr


def test_data_dir_from_environment(tmp_path):
    env = {"OPENEO_BACKEND_DATA_DIR": str(tmp_path)}
    assert run_cli("users", "add", "carol", "--password", "pw", env=env).returncode == 0
    assert (tmp_path / "backend.db").exists()
    assert "carol" in run_cli("users", "list", env=env).stdout


def test_config_file(tmp_path):
    config = tmp_path / "backend.yaml"
    config.write_text(f"data_dir: {tmp_path / 'from-config'}\n")
    assert run_cli("--config", str(config), "users", "add", "dave", "--password", "pw").returncode == 0
    assert (tmp_path / "from-config" / "backend.db").exists()


def test_invalid_setting_is_a_clear_error(tmp_path):
    result = run_cli("users", "list", env={"OPENEO_BACKEND_DATA_DIR": str(tmp_path),
                                           "OPENEO_BACKEND_OIDC_PROVIDERS": "not json"})
    assert result.returncode != 0 and "oidc_providers" in result.stderr


def test_unknown_demo_collection_is_a_clear_error(tmp_path):
    config = tmp_path / "backend.yaml"
    config.write_text("demo_collections: [SENTINEL1_GRD_DEMO, SENTINEL3_DEMO]\n")
    result = run_cli("--config", str(config), "users", "list", env={"OPENEO_BACKEND_DATA_DIR": str(tmp_path)})
    assert result.returncode != 0
    assert "unknown demo collection(s) 'SENTINEL3_DEMO'" in result.stderr
    assert "SENTINEL2_L2A_DEMO, SENTINEL1_GRD_DEMO, DEM_DEMO" in result.stderr


@pytest.mark.slow
def test_serve_under_gunicorn(tmp_path):
    """`serve` generates the demo catalog on first start and answers the real client."""
    port = free_port()
    assert run_cli("users", "add", "erin", "--password", "pw", "--data-dir", str(tmp_path)).returncode == 0
    server = subprocess.Popen(CLI + ["serve", "--port", str(port), "--data-dir", str(tmp_path)],
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                if requests.get(f"{url}/health", timeout=2).status_code == 200:
                    break
            except (requests.ConnectionError, requests.Timeout):  # a worker still warming up: wait
                time.sleep(0.3)
        else:
            pytest.fail("server did not start")
        assert (tmp_path / "demo-catalog" / "catalog.json").exists()
        con = openeo.connect(url).authenticate_basic("erin", "pw")
        assert con.describe_account()["name"] == "erin"
        assert "SENTINEL2_L2A_DEMO" in con.list_collection_ids()
        well_known = requests.get(f"{url}/.well-known/openeo").json()
        assert well_known["versions"][0]["url"] == f"{url}/openeo/1.2/"
    finally:
        server.terminate()
        server.wait(timeout=30)


def test_credits_commands(tmp_path):
    import json

    data = str(tmp_path)
    assert run_cli("users", "add", "fay", "--password", "pw", "--data-dir", data).returncode == 0
    assert run_cli("credits", "balance", "fay", "--data-dir", data).stdout.strip() == "1000"  # free credits
    granted = run_cli("credits", "grant", "fay", "250.5", "--note", "prize", "--data-dir", data)
    assert granted.returncode == 0 and granted.stdout.strip() == "fay: 1250.5 credits"
    corrected = run_cli("credits", "grant", "fay", "-5000", "--data-dir", data)
    assert corrected.stdout.strip() == "fay: 0 credits"  # never below zero
    report = json.loads(run_cli("credits", "report", "--user", "fay", "--format", "json", "--data-dir", data).stdout)
    assert sum(row["granted"] for row in report) == 0 and {row["kind"] for row in report} == {"grant"}
    csv_report = run_cli("credits", "report", "--since", "2000-01-01", "--data-dir", data).stdout.splitlines()
    assert csv_report[0] == "user,ref,kind,charged,refunded,granted,first,last" and len(csv_report) == 3
    missing = run_cli("credits", "balance", "nobody", "--data-dir", data)
    assert missing.returncode != 0 and "no user 'nobody'" in missing.stderr
