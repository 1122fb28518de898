"""Test results of a run: reading the results plugin's JSON lines, matching the expected failures."""

from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path

from conformance.work_packages import work_package_of


@dataclasses.dataclass
class Result:
    nodeid: str
    outcome: str  # passed failed error skipped xfailed xpassed expected expected-error
    reason: str = ""
    details: str = ""
    note: str = ""

    @property
    def module(self) -> str:
        return self.nodeid.split("::", 1)[0]

    @property
    def test(self) -> str:
        return self.nodeid.split("::", 1)[1] if "::" in self.nodeid else "(all tests)"

    @property
    def work_package(self) -> str:
        return work_package_of(self.nodeid)


@dataclasses.dataclass
class ExpectedFailure:
    pattern: str
    reason: str
    regex: re.Pattern
    used: bool = False


def read_results(path: Path) -> list[Result]:
    """The results conformance/results_plugin.py wrote (none if pytest wrote no file)."""
    results = []
    if path.is_file():
        for line in path.read_text(encoding="utf-8").splitlines():
            data = json.loads(line)
            results.append(
                Result(data["nodeid"], data["outcome"], data.get("reason", ""), data.get("details", ""))
            )
    return results


def load_expected_failures(path: Path | None) -> list[ExpectedFailure]:
    """``<test id or pattern with *> <reason>`` per line; ``#`` starts a comment line."""
    if path is None or not path.is_file():
        return []
    entries = []
    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        pattern, _, reason = line.partition(" ")
        regex = re.compile("^" + ".*".join(re.escape(p) for p in pattern.split("*")) + "$")
        entries.append(ExpectedFailure(pattern, reason.strip(), regex))
    return entries


def apply_expected_failures(results: list[Result], expected: list[ExpectedFailure]) -> list[ExpectedFailure]:
    """Mark listed failures as expected; returns the entries that matched no failure (stale).

    An exact test id that passed gets a note in its row; a '*' pattern only needs to
    match at least one failure (its other matches may pass).
    """
    for result in results:
        for entry in expected:
            if entry.regex.match(result.nodeid):
                if result.outcome == "failed":
                    result.outcome, result.note = "expected", entry.reason
                    entry.used = True
                elif result.outcome == "error":
                    result.outcome, result.note = "expected-error", entry.reason
                    entry.used = True
                elif result.outcome == "passed" and "*" not in entry.pattern:
                    result.note = "listed in expected failures but passed: remove it from the list"
                break
    return [entry for entry in expected if not entry.used]
