"""The runner's command line (see conformance/README.md for the options)."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from conformance.work_packages import ASSETS_HELP, WORK_PACKAGES

HERE = Path(__file__).resolve().parent
DEFAULT_ASSETS = HERE.parent.parent / "shared" / "conformance-assets"
DEFAULT_EXPECTED = HERE / "expected_failures.txt"
DEFAULT_EXPECTED_FEDERATION = HERE / "expected_failures_federation.txt"
FEDERATION_WORK_PACKAGES = ["WP2", "WP3", "WP4"]
SELF_CONTAINED_S2_COLLECTION = "SENTINEL2_L2A_DEMO"  # WP6 with --self-contained: the demo catalog's S2 collection


def parse_args(argv: list[str] | None) -> tuple[argparse.Namespace, list[str]]:
    argv = list(sys.argv[1:] if argv is None else argv)
    extra: list[str] = []
    if "--" in argv:
        index = argv.index("--")
        argv, extra = argv[:index], argv[index + 1 :]
    env = os.environ.get
    parser = argparse.ArgumentParser(
        description="Run the openEO test suite's WP2 (collections), WP3 (process metadata), WP4 "
        "(general compliance), WP5 (individual processes through POST /result) and WP6 (workflows on a "
        "Sentinel-2 collection) tests against a backend and print a results table. Arguments after "
        "`--` go to pytest (e.g. -k, -x, --processes, --process-levels, --experimental).",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=ASSETS_HELP,
    )
    parser.add_argument("url", nargs="?", default=env("OPENEO_BACKEND_URL"),
                        help="backend URL: the API root (…/openeo/1.2/) or the server root (resolved through "
                        "/.well-known/openeo); default env OPENEO_BACKEND_URL")
    parser.add_argument("--self-contained", action="store_true",
                        help="start a local OIDC server (tests/support/oidc_server.py) and this repository's "
                        "backend on free ports, run against them, stop both")
    parser.add_argument("--federation", action="store_true",
                        help="with --self-contained: start two of this repository's backends (A: Sentinel-2 + DEM, "
                        "B: Sentinel-1 + DEM) and the aggregator in front, and test the aggregator (default parts "
                        f"WP2 WP3 WP4; default expected failures {DEFAULT_EXPECTED_FEDERATION.name})")
    parser.add_argument("--backend-env", action="append", default=[], metavar="NAME=VALUE",
                        help="--self-contained: extra environment for the backend, e.g. "
                        "OPENEO_BACKEND_DEMO_CATALOG=false (repeatable)")
    parser.add_argument("--startup-timeout", type=float, default=300.0,
                        help="--self-contained: seconds to wait for the servers (default 300; the backend "
                        "generates its demo catalog on first start)")
    parser.add_argument("--keep-tmp", action="store_true", help="--self-contained: keep the temp dir (logs, data)")
    parser.add_argument("--assets", type=Path, default=Path(env("CONFORMANCE_ASSETS", DEFAULT_ASSETS)),
                        help=f"test-suite assets directory, used as the working directory (default {DEFAULT_ASSETS})")
    parser.add_argument("--stac-schemas", type=Path, default=None,
                        help="directory of STAC JSON schemas for offline validation (default: <assets>/stac-schemas "
                        "if present, else stac-validator downloads them)")
    parser.add_argument("--stac-schemas-allow-network", action="store_true",
                        help="download STAC schemas missing from --stac-schemas instead of failing")
    parser.add_argument("--no-suite-workarounds", action="store_true",
                        help="run the suite exactly as installed (without conformance/suite_workarounds.py: "
                        "then most WP4 tests fail with FileNotFoundError, a bug of openeo-test-suite 0.2.2)")
    parser.add_argument("--corrected-openapi-validation", action="store_true",
                        help="WP4: validate responses as OpenAPI 3.0 (the openEO API document's version; the suite "
                        "uses a 3.1 validator that rejects every `nullable` null) and read process_json_schema's "
                        "and collection summaries' oneOf as anyOf (Open-EO/openeo-api#600). A deviation, marked in the results")
    parser.add_argument("--advertise-client-credentials", action="store_true",
                        help="--self-contained: list the test client with grant type 'client_credentials' in the "
                        "provider's default_clients (not an allowed value in openEO API 1.2, so "
                        "test_GET_credentials_oidc fails; the Python client does not need it)")
    parser.add_argument("--wp", action="append", choices=sorted(WORK_PACKAGES), default=None,
                        help="work package(s) to run (repeatable; default all: WP2 WP3 WP4 WP5 WP6)")
    parser.add_argument("--s2-collection", default=env("OPENEO_S2_COLLECTION"), metavar="ID_OR_URL",
                        help="WP6: the Sentinel-2 collection the workflow tests load (an openEO collection id, or a "
                        f"STAC collection URL for load_stac); default env OPENEO_S2_COLLECTION, with --self-contained "
                        f"{SELF_CONTAINED_S2_COLLECTION}; without one WP6 is skipped")

    auth = parser.add_argument_group("authentication (WP4, WP5 and WP6; WP2/WP3 need none)")
    auth.add_argument("--auth", choices=["client_credentials", "basic", "oidc-interactive", "none"],
                      default=env("OPENEO_AUTH_METHOD"),
                      help="client_credentials (what the suite expects: its WP4 tests call authenticate_oidc()); "
                      "basic (a deviation: WP4 tokens via basic auth); oidc-interactive (device code, "
                      "needs a person); none (skip WP4, WP5 and WP6). Default env OPENEO_AUTH_METHOD, "
                      "client_credentials "
                      "when a client id/secret is given or with --self-contained")
    auth.add_argument("--provider-id", default=env("OPENEO_AUTH_PROVIDER_ID"), help="env OPENEO_AUTH_PROVIDER_ID")
    auth.add_argument("--client-id", default=env("OPENEO_AUTH_CLIENT_ID"), help="env OPENEO_AUTH_CLIENT_ID")
    auth.add_argument("--client-secret", default=env("OPENEO_AUTH_CLIENT_SECRET"),
                      help="env OPENEO_AUTH_CLIENT_SECRET")
    auth.add_argument("--username", default=env("OPENEO_AUTH_BASIC_USERNAME"), help="env OPENEO_AUTH_BASIC_USERNAME")
    auth.add_argument("--password", default=env("OPENEO_AUTH_BASIC_PASSWORD"), help="env OPENEO_AUTH_BASIC_PASSWORD")

    out = parser.add_argument_group("results")
    out.add_argument("--write-results", type=Path, metavar="FILE",
                     help="also write the Markdown table to FILE (e.g. conformance/RESULTS.md)")
    out.add_argument("--expected-failures", type=Path, default=None,
                     help=f"known failures, '<test id> <reason>' per line, '*' wildcards (default {DEFAULT_EXPECTED}, "
                     f"with --federation {DEFAULT_EXPECTED_FEDERATION}; 'none' to ignore)")
    out.add_argument("--strict-expected", action="store_true",
                     help="also exit non-zero when a listed expected failure passes (stale entry)")
    out.add_argument("--json", type=Path, metavar="FILE", help="also write all results (with details) as JSON")
    out.add_argument("--only-problems", action="store_true",
                     help="print only non-passed tests in the console table (files get all rows)")
    out.add_argument("--timeout", type=float, default=600.0, help="per-test timeout in seconds (pytest-timeout)")
    out.add_argument("--tb", default="no", choices=["no", "line", "short", "long"],
                     help="pytest traceback style in the console (default no: the table has the reasons, "
                     "--json the full reports)")
    out.add_argument("-q", "--quiet", action="store_true", help="hide pytest's own output")
    args = parser.parse_args(argv)
    if not args.self_contained and not args.url:
        parser.error("give a backend URL or --self-contained")
    if args.self_contained and args.url:
        parser.error("--self-contained starts its own backend: do not give a URL")
    if args.corrected_openapi_validation and args.no_suite_workarounds:
        parser.error("--corrected-openapi-validation is a suite workaround: not with --no-suite-workarounds")
    if args.federation and not args.self_contained:
        parser.error("--federation starts its own servers: use it with --self-contained")
    if args.federation and args.wp is None:
        args.wp = list(FEDERATION_WORK_PACKAGES)
    if args.expected_failures is None:
        args.expected_failures = DEFAULT_EXPECTED_FEDERATION if args.federation else DEFAULT_EXPECTED
    if args.self_contained and not args.s2_collection:
        args.s2_collection = SELF_CONTAINED_S2_COLLECTION
    if str(args.expected_failures) == "none":
        args.expected_failures = None
    return args, extra
