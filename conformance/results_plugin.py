"""pytest plugin: write one JSON line per test outcome (for conformance/run.py).

Load with ``-p conformance.results_plugin --conformance-results FILE``.  Each line:
``{"nodeid", "outcome", "reason", "details", "duration"}`` where ``outcome`` is one of
``passed``, ``failed``, ``skipped``, ``error`` (setup/teardown failure or a module that
failed to import/collect), ``xfailed`` or ``xpassed``; ``reason`` is one line and
``details`` the full pytest report text of non-passes.

A second, optional feature for back-ends without OIDC client credentials:
``--conformance-basic-auth`` makes the WP4 compliance tests and the WP5 process tests (which
call ``connection.authenticate_oidc()`` to get their bearer token) authenticate with HTTP
basic instead, from ``OPENEO_AUTH_BASIC_USERNAME``/``OPENEO_AUTH_BASIC_PASSWORD`` (the
variables the suite itself uses for its ``connection`` fixture).  That deviates from
the official suite and is marked in the results.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest

_MAX_REASON = 400


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("conformance-results", "conformance runner")
    group.addoption("--conformance-results", default=None, help="JSON-lines output file.")
    group.addoption(
        "--conformance-basic-auth",
        action="store_true",
        default=False,
        help="WP4/WP5: get the bearer token with basic auth instead of authenticate_oidc().",
    )


def _one_line(text: str) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= _MAX_REASON else text[: _MAX_REASON - 1] + "…"


_EMPTY_ASSERT = re.compile(r"^(?:AssertionError: )?assert .* == ''$")
_BEARER = re.compile(r"(Bearer\s+)[^\s'\"]+")


def redact(text: str) -> str:
    """Hide access tokens (the WP4 tests show their bearer token in tracebacks)."""
    return _BEARER.sub(r"\1***", text)


def _reason(report) -> str:
    longrepr = report.longrepr
    if longrepr is None:
        return ""
    if isinstance(longrepr, tuple) and len(longrepr) == 3:  # skip: (path, lineno, message)
        return _one_line(re.sub(r"^Skipped: ", "", str(longrepr[2])))
    crash = getattr(longrepr, "reprcrash", None)
    message = crash.message if crash is not None else str(longrepr).strip().splitlines()[-1]
    # WP4 tests end in `assert fail_log == ""`: show the log (pytest's "+ ..." diff
    # lines), not the abbreviated assert expression
    lines = message.strip().splitlines()
    if lines and _EMPTY_ASSERT.match(lines[0].strip()):
        added = [line.strip()[2:] for line in lines[1:] if line.strip().startswith("+ ")]
        if added:
            message = " ".join(added)
    return _one_line(redact(message))


class _Recorder:
    def __init__(self, path: Path):
        self.path = path
        self.results: dict[str, dict] = {}
        self.order: list[str] = []

    def _set(self, nodeid: str, outcome: str, report=None, reason: str | None = None):
        if nodeid not in self.results:
            self.order.append(nodeid)
            self.results[nodeid] = {"nodeid": nodeid, "duration": 0.0}
        entry = self.results[nodeid]
        entry["outcome"] = outcome
        entry["reason"] = reason if reason is not None else (_reason(report) if report else "")
        if report is not None and outcome not in ("passed", "xpassed"):
            entry["details"] = redact(str(report.longreprtext or ""))[-20000:]

    @pytest.hookimpl(trylast=True)
    def pytest_runtest_logreport(self, report) -> None:
        nodeid = report.nodeid
        current = self.results.get(nodeid, {}).get("outcome")
        if hasattr(report, "wasxfail"):
            outcome = "xfailed" if report.skipped else "xpassed"
            if report.when == "call" or report.skipped:
                self._set(nodeid, outcome, report, reason=_one_line(report.wasxfail) or None)
        elif report.when == "setup":
            if report.failed:
                self._set(nodeid, "error", report)
            elif report.skipped:
                self._set(nodeid, "skipped", report)
        elif report.when == "call":
            if report.failed:
                self._set(nodeid, "failed", report)
            elif report.skipped:
                self._set(nodeid, "skipped", report)
            else:
                self._set(nodeid, "passed", report)
        elif report.when == "teardown" and report.failed and current in (None, "passed"):
            self._set(nodeid, "error", report, reason="teardown: " + _reason(report))
        if nodeid in self.results:
            self.results[nodeid]["duration"] += getattr(report, "duration", 0.0) or 0.0

    def pytest_collectreport(self, report) -> None:
        if report.failed:
            self._set(report.nodeid or "<collection>", "error", report,
                      reason="collection failed: " + _reason(report))

    def pytest_sessionfinish(self, session) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path, "w", encoding="utf-8") as fh:
            for nodeid in self.order:
                fh.write(json.dumps(self.results[nodeid]) + "\n")


def _basic_auth_access_token(pytestconfig):
    """Replacement for compliance_util.get_access_token: basic auth, returns the bearer."""
    from openeo_test_suite.lib.backend_under_test import get_backend_under_test

    connection = get_backend_under_test().connection
    connection.authenticate_basic(
        username=os.environ.get("OPENEO_AUTH_BASIC_USERNAME"),
        password=os.environ.get("OPENEO_AUTH_BASIC_PASSWORD"),
    )
    return connection.auth.bearer


def _basic_auth_for_process_runner() -> None:
    """WP5: the process tests' `connection` fixture calls ``con.authenticate_oidc()`` itself; make that
    call log in with basic auth (the same deviation as for WP4)."""
    import openeo

    def authenticate_basic_instead(self, *args, **kwargs):
        return self.authenticate_basic(username=os.environ.get("OPENEO_AUTH_BASIC_USERNAME"),
                                       password=os.environ.get("OPENEO_AUTH_BASIC_PASSWORD"))

    openeo.Connection.authenticate_oidc = authenticate_basic_instead


def pytest_configure(config: pytest.Config) -> None:
    path = config.getoption("--conformance-results")
    if path:
        config.pluginmanager.register(_Recorder(Path(path)), "conformance-recorder")
    if config.getoption("--conformance-basic-auth"):
        import openeo_test_suite.lib.compliance_util as compliance_util

        compliance_util.get_access_token = _basic_auth_access_token
        _basic_auth_for_process_runner()


def pytest_report_header(config: pytest.Config):
    if config.getoption("--conformance-basic-auth"):
        return ["WP4/WP5 bearer token: basic auth (deviation from the official suite's OIDC)"]
    return None
