"""Runs ``long_profile`` tests only when RELIABILITY_PROFILE=long (see profile.py)."""

from __future__ import annotations

import pytest

from tests.reliability.profile import PROFILE


def pytest_configure(config):
    if PROFILE not in ("short", "long"):
        raise pytest.UsageError(f"RELIABILITY_PROFILE must be 'short' or 'long', not {PROFILE!r}")


def pytest_collection_modifyitems(config, items):
    if PROFILE == "long":
        return
    skip = pytest.mark.skip(reason="long profile only: make reliability-long")
    for item in items:
        if "long_profile" in item.keywords:
            item.add_marker(skip)
