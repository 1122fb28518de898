"""The two profiles of the reliability suites (issue 13).

``short`` (default, part of ``make test`` and CI: the whole folder in well under 10 minutes) and ``long``
(``make reliability-long``: ≥ 2,000 fuzzed requests, full load figures). A suite takes its sizes from
``scaled(short, long)``, or marks a test ``@pytest.mark.long_profile`` to run it only in the long profile.
"""

from __future__ import annotations

import os

PROFILE = os.environ.get("RELIABILITY_PROFILE", "short")


def scaled(short, long):
    """The size of a run (requests, jobs, seconds) in the current profile."""
    return long if PROFILE == "long" else short
