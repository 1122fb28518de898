"""`openeo-aggregator demo`: the whole federation from one command, used with the real `openeo` client with
the credentials it prints, stopped by SIGTERM (every server's process group gone) or, when a server
dies, stopping the rest and exiting non-zero with that server's log."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import openeo
import pytest
import requests

from aggregator.servers import free_port
from backend.demo import DEMO_DEM_COLLECTION, DEMO_S1_COLLECTION, DEMO_S2_COLLECTION
from tests.support.federation import environment
from tests.support.processes import LOCALHOST

pytestmark = pytest.mark.slow

START_TIMEOUT = 180  # three servers on a shared 2-core machine (the catalog is generated already)
STOP_TIMEOUT = 30
AREA = {"west": 679720, "south": 5151080, "east": 680680, "north": 5151920, "crs": 32632}


@dataclass
class RunningDemo:
    process: subprocess.Popen
    output: list[str] = field(default_factory=list)
    ready: threading.Event = field(default_factory=threading.Event)

    @property
    def text(self) -> str:
        return "".join(self.output)

    def value(self, label: str) -> str:
        return re.search(rf"^\s+{label}:\s+(\S+)$", self.text, re.MULTILINE).group(1)

    def pids(self) -> dict[str, int]:
        """Server name -> pid, from the banner lines `  backend A  http://... (pid N, log ...)`."""
        return {name.strip(): int(pid) for name, pid in re.findall(r"^  (aggregator|backend \w)\s.*\(pid (\d+),",
                                                                  self.text, re.MULTILINE)}

    def wait_exit(self, timeout: float) -> int:
        return self.process.wait(timeout)


def _read(demo: RunningDemo, stream) -> None:
    for line in stream:
        demo.output.append(line)
        if line.startswith("Ctrl-C"):
            demo.ready.set()


def start_demo(data_dir: Path, catalog: Path, *args: str) -> tuple[RunningDemo, int]:
    """`openeo-aggregator demo` on a free port with an already generated catalog linked into its data dir."""
    data_dir.mkdir(parents=True)
    (data_dir / "demo-catalog").symlink_to(catalog, target_is_directory=True)
    port = free_port()
    process = subprocess.Popen(
        [*_command(), "demo", "--port", str(port), "--data-dir", str(data_dir), *args],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=environment(), start_new_session=True)
    demo = RunningDemo(process)
    threading.Thread(target=_read, args=(demo, process.stdout), daemon=True).start()
    return demo, port


def _command() -> list[str]:
    from aggregator.servers import console_command

    return console_command("openeo-aggregator", "aggregator.cli")


def numbers(value) -> list[float]:
    if isinstance(value, list):
        return [n for item in value for n in numbers(item)]
    if isinstance(value, dict):
        return [n for item in value.values() for n in numbers(item)]
    return [value] if isinstance(value, (int, float)) else []


def group_alive(pid: int) -> bool:
    try:
        os.killpg(pid, 0)
    except ProcessLookupError:
        return False
    # members that exited but are not reaped yet (zombies) count as gone
    states = subprocess.run(["ps", "-o", "stat=", "-g", str(pid)], capture_output=True, text=True).stdout.split()
    return any(not state.startswith("Z") for state in states)


def wait_groups_gone(pids, timeout: float) -> list[int]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        alive = [pid for pid in pids if group_alive(pid)]
        if not alive:
            return []
        time.sleep(0.2)
    return alive


@pytest.fixture
def cleanup():
    """Kills whatever a failed test left behind (the demo's group and the servers' groups)."""
    groups: list[int] = []
    yield groups
    for pid in groups:
        try:
            os.killpg(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def wait_ready(demo: RunningDemo) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while not demo.ready.wait(0.5):
        assert demo.process.poll() is None, f"the demo exited with {demo.process.returncode}:\n{demo.text}"
        assert time.monotonic() < deadline, f"the demo did not get ready in {START_TIMEOUT} s:\n{demo.text}"


def test_demo_serves_the_federation_to_the_openeo_client_and_stops_on_sigterm(demo_catalog_dir, tmp_path, cleanup):
    demo, port = start_demo(tmp_path / "demo", demo_catalog_dir, "--user", "ada", "--password", "lovelace")
    cleanup.append(demo.process.pid)
    wait_ready(demo)
    pids = demo.pids()
    cleanup.extend(pids.values())
    assert sorted(pids) == ["aggregator", "backend A", "backend B"], demo.text
    url = demo.value("URL")
    assert url == f"http://{LOCALHOST}:{port}/openeo/1.2/"
    assert (demo.value("user"), demo.value("password")) == ("ada", "lovelace")

    con = openeo.connect(url).authenticate_basic(demo.value("user"), demo.value("password"))
    collections = {c["id"]: c for c in con.list_collections()}
    assert sorted(collections) == sorted([DEMO_S2_COLLECTION, DEMO_S1_COLLECTION, DEMO_DEM_COLLECTION])
    assert collections[DEMO_DEM_COLLECTION]["federation:backends"] == ["A", "B"]
    assert collections[DEMO_S2_COLLECTION]["federation:backends"] == ["A"]
    assert collections[DEMO_S1_COLLECTION]["federation:backends"] == ["B"]
    federation = con.get("/").json()["federation"]
    assert sorted(federation) == ["A", "B"] and {b["status"] for b in federation.values()} == {"online"}
    backend_b = federation["B"]["url"]
    assert re.fullmatch(rf"http://{LOCALHOST}:\d+/openeo/1\.2/?", backend_b)

    # a small synchronous request: Sentinel-1 lives on B only, so B runs it, with the same user
    cube = con.load_collection(DEMO_S1_COLLECTION, spatial_extent=AREA, temporal_extent=["2022-06-01", "2022-06-15"],
                               bands=["VV"]).reduce_dimension("t", "mean")
    graph = {"process": {"process_graph": cube.save_result("JSON").flat_graph()}}
    through_demo = con.post("/result", json=graph, expected_status=200)
    assert through_demo.headers["OpenEO-Federation-Backend"] == "B"
    direct = openeo.connect(backend_b).authenticate_basic("ada", "lovelace").post("/result", json=graph,
                                                                                   expected_status=200)
    values = through_demo.json()
    assert values == direct.json()
    assert any(v > 0 for v in numbers(values))  # backscatter: a positive linear power ratio

    demo.process.send_signal(signal.SIGTERM)
    started = time.monotonic()
    assert demo.wait_exit(STOP_TIMEOUT) == 0, demo.text
    stopped_in = time.monotonic() - started
    assert wait_groups_gone(pids.values(), 5) == [], f"servers left running: {pids}"
    assert "stopped" in demo.text.splitlines()[-1]
    print(f"demo stopped in {stopped_in:.1f} s")
    with pytest.raises(requests.ConnectionError):
        requests.get(url, timeout=2)


def test_a_dying_backend_stops_the_demo_with_its_log(demo_catalog_dir, tmp_path, cleanup):
    demo, _ = start_demo(tmp_path / "demo", demo_catalog_dir)
    cleanup.append(demo.process.pid)
    wait_ready(demo)
    pids = demo.pids()
    cleanup.extend(pids.values())
    assert (demo.value("user"), demo.value("password")) == ("demo", "demo")  # the documented defaults

    os.killpg(pids["backend B"], signal.SIGKILL)
    code = demo.wait_exit(STOP_TIMEOUT)
    assert code == 1, demo.text
    assert wait_groups_gone(pids.values(), 5) == [], f"servers left running: {pids}"
    assert re.search(r"backend B \(pid \d+\) exited with code -9", demo.text), demo.text
    assert "Listening at: http://127.0.0.1:" in demo.text  # the tail of B's log (gunicorn's start lines)
