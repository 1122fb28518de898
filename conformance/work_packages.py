"""The parts of the openEO test suite the runner covers, and the assets each part needs."""

from __future__ import annotations

from pathlib import Path

# Work packages of the suite that this runner covers: directory below the installed
# ``openeo_test_suite`` package, title, and the asset paths (relative to --assets) they read.
WORK_PACKAGES = {
    "WP2": ("tests/collections", "collections (STAC metadata)", []),
    "WP3": ("tests/processes/metadata", "process metadata", ["assets/processes"]),
    "WP4": (
        "tests/general",
        "general API compliance",
        ["assets/openeo-api/openapi.yaml", "src/openeo_test_suite/tests/general/payload_examples"],
    ),
    "WP5": ("tests/processes/processing", "individual processes (POST /result)", ["assets/processes"]),
    # WP6: the workflow tests (levels L1, L2, L2A, L3) on a Sentinel-2 collection (--s2-collection);
    # the process selection (skipper) reads the openeo-processes specs.
    "WP6": ("tests/workflows", "workflows on Sentinel-2 data (POST /result, batch jobs)", ["assets/processes"]),
}

# pytest options a work package needs: WP5 sends every process test as a one-node graph to POST /result
# with the suite's HTTP runner (its default, `skip`, skips them all).
PYTEST_OPTIONS = {"WP5": ["--runner", "http"]}

ASSETS_HELP = """\
The openEO test suite reads its assets from the working directory:
  ./assets/processes                                    (WP3/WP5/WP6: openeo-processes specs + tests)
  ./assets/openeo-api/openapi.yaml                      (WP4: the openEO API spec)
  ./src/openeo_test_suite/tests/general/payload_examples (WP4: request payloads)
Get them by cloning the test suite with its submodules and pass its root as --assets:
  git clone --recurse-submodules https://github.com/Open-EO/openeo-test-suite.git
  python conformance/run.py ... --assets openeo-test-suite"""


def suite_directory(wp: str) -> str:
    """The work package's test directory, relative to the installed ``openeo_test_suite``."""
    return WORK_PACKAGES[wp][0]


def work_package_of(nodeid: str) -> str:
    """"WP2" ... for a test id relative to the installed suite; "?" if it is in none."""
    for wp, (directory, _, _) in WORK_PACKAGES.items():
        if nodeid.startswith(directory):
            return wp
    return "?"


def check_assets(assets: Path) -> dict[str, list[str]]:
    """Missing asset paths per work package."""
    missing = {}
    for wp, (_, _, needed) in WORK_PACKAGES.items():
        missing[wp] = [p for p in needed if not (assets / p).exists()]
    return missing
