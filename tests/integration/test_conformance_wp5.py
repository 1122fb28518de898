"""WP5 of the official openEO test suite (individual processes through POST /result) in CI.

The slow test runs ``conformance/run.py --self-contained --wp WP5`` (a local OIDC server and our
backend; the suite's HTTP runner sends each of the ~950 openeo-processes test cases as a one-node graph
to POST /result) and fails on any failure not listed in conformance/expected_failures.txt, on a
listed failure that passes now (--strict-expected: remove it), and when fewer tests pass than today.
About 40-60 s. The fast tests check the runner's WP5 workarounds of the suite (conformance/suite_workarounds.py).
"""

from __future__ import annotations

import collections
import json
import subprocess
import sys
import time
import types
from pathlib import Path

import pytest

from conformance import suite_workarounds

REPO = Path(__file__).resolve().parents[2]
ASSETS = REPO.parent / "shared" / "conformance-assets"
WP5_MODULE = "tests/processes/processing/test_example.py"
PASSED_AT_LEAST = 559  # 2026-11, openeo-test-suite 0.2.2: raise it when more pass, never lower it silently
TIME_LIMIT = 180.0


@pytest.mark.skipif(not (ASSETS / "assets" / "processes" / "tests").is_dir(),
                    reason=f"conformance assets not in {ASSETS}")
@pytest.mark.slow
def test_wp5_processes_do_not_regress(tmp_path):
    out = tmp_path / "results.json"
    started = time.monotonic()
    proc = subprocess.run([sys.executable, str(REPO / "conformance" / "run.py"), "--self-contained", "--wp", "WP5",
                           "--strict-expected", "-q", "--only-problems", "--json", str(out)],
                          cwd=REPO, capture_output=True, text=True, timeout=600)
    elapsed = time.monotonic() - started
    assert proc.returncode == 0, proc.stdout[-6000:] + proc.stderr[-3000:]
    results = json.loads(out.read_text())["results"]
    outcomes = collections.Counter(r["outcome"] for r in results)
    assert outcomes["passed"] >= PASSED_AT_LEAST, outcomes
    assert not outcomes["failed"] and not outcomes["error"], outcomes
    executed = outcomes["passed"] + outcomes["expected"] + outcomes["expected-error"]
    assert outcomes["passed"] / executed >= 0.95, outcomes
    # every process the suite has tests for is offered (a withheld process would turn its tests into skips)
    unsupported = [r["reason"] for r in results if r["reason"].startswith("Backend does not support")]
    assert not unsupported, unsupported
    assert all(r["nodeid"].startswith(WP5_MODULE) for r in results)
    assert elapsed < TIME_LIMIT, f"WP5 took {elapsed:.0f} s"


# --- the runner's WP5 workarounds of openeo-test-suite 0.2.2 ------------------------------------

def _fake_test_module(calls: list):
    def _load_ref(ref, file):
        calls.append(Path(file).parent / ref)
        return {"loaded": str(Path(file).parent / ref)}

    def check_non_json_values(value):
        if value != value or value in (float("inf"), float("-inf")):
            raise ValueError("HTTP JSON APIs don't support NaN values")
        if isinstance(value, list):
            for item in value:
                check_non_json_values(item)

    def check_return_value(example, result, connection, file):
        calls.append(("checked", result))

    return types.SimpleNamespace(__name__="openeo_test_suite.tests.processes.processing.test_example",
                                 _load_ref=_load_ref, check_non_json_values=check_non_json_values,
                                 check_return_value=check_return_value)


def test_ref_paths_resolve_against_the_tests_directory(tmp_path):
    (tmp_path / "tests" / "assets").mkdir(parents=True)
    (tmp_path / "tests" / "assets" / "cube.json5").write_text("{}")
    calls: list = []
    module = _fake_test_module(calls)
    suite_workarounds._process_test_fixes(module)
    module._load_ref("assets/cube.json5", tmp_path / "add.json")  # the suite passes the spec file
    module._load_ref("assets/missing.json5", tmp_path / "add.json")  # unchanged when it exists nowhere
    assert calls == [tmp_path / "tests" / "assets" / "cube.json5", tmp_path / "assets" / "missing.json5"]


def test_non_json_values_skip_instead_of_failing():
    calls: list = []
    module = _fake_test_module(calls)
    suite_workarounds._process_test_fixes(module)
    with pytest.raises(NotImplementedError, match="JSON-only runner"):  # the suite turns this into a skip
        module.check_non_json_values([1, float("nan")])
    http = types.SimpleNamespace(is_json_only=lambda: True)
    with pytest.raises(pytest.skip.Exception, match="expected result"):
        module.check_return_value({"returns": [1, float("inf")]}, [1, None], http, Path("x.json"))
    module.check_return_value({"returns": [1, 2]}, [1, 2], http, Path("x.json"))
    assert calls == [("checked", [1, 2])]


def test_http_runner_sends_callbacks():
    from openeo_test_suite.lib.process_runner.http import Http

    suite_workarounds._http_runner_sends_callbacks()
    child = {"process_graph": {"a": {"process_id": "absolute", "arguments": {"x": {"from_parameter": "x"}},
                                     "result": True}}}
    assert Http(connection=None).encode_process_graph(child, "array_apply", "process") is child
