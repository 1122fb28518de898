"""conformance/expected_failures.txt lists known failures one by one, each with its reason.

A wildcard over WP3 (process metadata) once hid ~86 failures and would have hidden any regression of
the specs /processes serves: WP3 entries must name single tests.
"""

from __future__ import annotations

import collections
from pathlib import Path

from conformance.results import load_expected_failures
from conformance.work_packages import work_package_of

EXPECTED_FAILURES = Path(__file__).resolve().parents[2] / "conformance" / "expected_failures.txt"


def test_wp3_entries_name_single_tests_with_a_reason():
    entries = load_expected_failures(EXPECTED_FAILURES)
    wp3 = [entry for entry in entries if work_package_of(entry.pattern) == "WP3"]
    assert [entry.pattern for entry in wp3 if "*" in entry.pattern] == []
    assert all(entry.pattern.endswith("]") and "[" in entry.pattern for entry in wp3)  # one process each


def test_every_entry_has_a_reason_and_is_listed_once():
    entries = load_expected_failures(EXPECTED_FAILURES)
    assert entries and all(len(entry.reason) > 10 for entry in entries)
    duplicates = [p for p, n in collections.Counter(entry.pattern for entry in entries).items() if n > 1]
    assert duplicates == []
