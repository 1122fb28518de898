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
}

ASSETS_HELP = """\
The openEO test suite reads its assets from the working directory:
  ./assets/processes                                    (WP3: openeo-processes specs + tests)
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
