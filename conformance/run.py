#!/usr/bin/env python3
"""Run the official openEO test suite (openeo-test-suite, PyPI) against a backend.

Runs the suite's WP2 (collections), WP3 (process metadata), WP4 (general API
compliance) and WP5 (individual processes through POST /result) tests, and prints a Markdown table: one row per test with passed / failed /
skipped / error and a one-line reason for everything that did not pass.

    .venv/bin/python conformance/run.py --self-contained
    .venv/bin/python conformance/run.py http://127.0.0.1:8080/openeo/1.2/ --auth basic \\
        --username alice --password secret
    .venv/bin/python conformance/run.py https://openeo.example.org/openeo/1.2/ \\
        --auth client_credentials --provider-id egi --client-id ... --client-secret ...

See conformance/README.md for all options, the assets the suite needs, the expected
failures file and the exit codes. The entry point only: the runner is in main.py
(cli, servers, suite, results, report, ... next to it).
"""

from __future__ import annotations

import sys
from pathlib import Path

if not __package__:  # run as a script: import `conformance` and `tests` from this checkout,
    # and keep this directory's module names (cli, report, ...) off the top level
    _HERE = Path(__file__).resolve().parent
    sys.path[:] = [str(_HERE.parent), *(p for p in sys.path if Path(p).resolve() != _HERE)]

from conformance.main import main  # noqa: E402
from conformance.report import render_markdown  # noqa: E402, F401  (the runner's API, used by tests)
from conformance.results import (  # noqa: E402, F401
    ExpectedFailure,
    Result,
    apply_expected_failures,
    load_expected_failures,
    read_results,
)

if __name__ == "__main__":
    sys.exit(main())
