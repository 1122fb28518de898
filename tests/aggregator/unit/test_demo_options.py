"""`openeo-aggregator demo` refuses what it cannot honour before it starts anything."""

from __future__ import annotations

import socket

from click.testing import CliRunner

from aggregator.cli import main


def test_a_port_in_use_is_refused_before_anything_starts(tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = CliRunner().invoke(main, ["demo", "--port", str(port), "--data-dir", str(tmp_path / "demo")])
    assert done.exit_code == 1
    assert f"port {port} is in use: choose another with --port" in done.output
    assert not (tmp_path / "demo" / "A").exists()  # no backend was started


def test_a_config_file_is_refused(tmp_path):
    config = tmp_path / "federation.yaml"
    config.write_text("title: mine\n")
    done = CliRunner().invoke(main, ["--config", str(config), "demo", "--data-dir", str(tmp_path / "demo")])
    assert done.exit_code == 1
    assert "`demo` configures its servers itself: drop --config" in done.output


def test_an_empty_password_is_refused(tmp_path):
    done = CliRunner().invoke(main, ["demo", "--password", "", "--data-dir", str(tmp_path / "demo")])
    assert done.exit_code == 1
    assert "--user and --password must not be empty" in done.output
