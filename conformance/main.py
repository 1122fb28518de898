"""One conformance run, from the command line to the exit code.

Exit codes: 0 nothing failed beyond the expected failures; 1 an unexpected failure or
error (or, with --strict-expected, a stale expected-failure entry); 2 a set-up problem.
"""

from __future__ import annotations

import contextlib
import datetime
import shutil
import sys
import tempfile
from pathlib import Path

from conformance.auth import auth_settings
from conformance.backend_api import backend_metadata, resolve_api_url
from conformance.cli import parse_args
from conformance.errors import RunnerError
from conformance.report import publish, run_metadata
from conformance.results import ExpectedFailure, Result, apply_expected_failures, load_expected_failures
from conformance.suite import run_suite
from conformance.work_packages import ASSETS_HELP, WORK_PACKAGES, check_assets, suite_directory

# Work packages whose tests log in (WP4's compliance tests, WP5's process runner, WP6's workflows):
# skipped without auth.
AUTHENTICATED_WPS = ("WP4", "WP5", "WP6")
PYTEST_SETUP_FAILURES = (2, 3, 4)  # interrupted, internal error, usage error (5: nothing collected)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args, extra = parse_args(argv)
    try:
        import openeo_test_suite  # noqa: F401
    except ImportError:
        print("openeo-test-suite is not installed in this Python: pip install 'openeo-test-suite==0.2.2' "
              "(or: pip install -e '.[backend,test]')", file=sys.stderr)
        return 2
    args.assets = args.assets.expanduser().resolve()
    selected = args.wp or list(WORK_PACKAGES)
    selected = [wp for wp in WORK_PACKAGES if wp in selected]
    expected = load_expected_failures(args.expected_failures)
    try:
        extra_backend_env = _backend_env(args.backend_env)
    except ValueError as exc:
        print(exc, file=sys.stderr)
        return 2
    selected, synthetic = _skip_missing_assets(args.assets, selected)

    workdir = Path(tempfile.mkdtemp(prefix="openeo-conformance-"))
    started = datetime.datetime.now(datetime.timezone.utc)
    failed_setup = False
    try:
        with contextlib.ExitStack() as stack:
            oidc = None
            if args.self_contained:
                servers = _self_contained_servers()
                oidc = stack.enter_context(servers.oidc_test_server(workdir, args.startup_timeout))
                if args.federation:
                    from conformance.federation import local_federation

                    root = stack.enter_context(local_federation(
                        workdir, oidc, extra_backend_env, args.startup_timeout, args.advertise_client_credentials))
                else:
                    root = stack.enter_context(servers.local_backend(
                        workdir, oidc, extra_backend_env, args.startup_timeout, args.advertise_client_credentials))
                api_url = resolve_api_url(root)
            else:
                api_url = resolve_api_url(args.url)
            auth_env, basic_wp4, skip_wp4, auth_text = auth_settings(args, oidc)
            for wp in AUTHENTICATED_WPS:
                if skip_wp4 and wp in selected:
                    print(f"[conformance] skipping {wp}: {skip_wp4}", file=sys.stderr)
                    synthetic.append(Result(suite_directory(wp), "skipped", skip_wp4))
                    selected.remove(wp)
            if "WP6" in selected and not args.s2_collection:
                reason = "WP6 needs a Sentinel-2 collection: --s2-collection ID_OR_URL (env OPENEO_S2_COLLECTION)"
                print(f"[conformance] skipping WP6: {reason}", file=sys.stderr)
                synthetic.append(Result(suite_directory("WP6"), "skipped", reason))
                selected.remove("WP6")
            backend = backend_metadata(api_url)
            code, results = (0, [])
            if selected:
                code, results = run_suite(args, extra, api_url, auth_env, basic_wp4, selected, workdir)
                if code in PYTEST_SETUP_FAILURES:
                    print(f"[conformance] pytest exited with code {code}", file=sys.stderr)
                    failed_setup = True
    except RunnerError as exc:
        print(f"[conformance] {exc}", file=sys.stderr)
        failed_setup = True  # keep the logs
        return 2
    finally:
        if args.keep_tmp or failed_setup:
            print(f"[conformance] temp dir (logs, data): {workdir}", file=sys.stderr)
        elif workdir.exists():
            shutil.rmtree(workdir, ignore_errors=True)

    results = synthetic + results
    results.sort(key=lambda r: (list(WORK_PACKAGES).index(r.work_package) if r.work_package in WORK_PACKAGES
                                else 99))
    stale_entries = _stale_entries(results, expected, all_tests_ran=not extra)
    meta = run_metadata(args, argv, started=started, api_url=api_url, backend=backend,
                        auth_text=auth_text, expected=expected)
    publish(results, meta, args)
    return _exit_code(results, stale_entries, failed_setup=failed_setup, strict=args.strict_expected)


def _self_contained_servers():
    """conformance.servers, which needs tests/support/ of a repository checkout."""
    try:
        from conformance import servers
    except ImportError as exc:
        raise RunnerError(
            f"--self-contained needs the OIDC test server in tests/support/ ({exc}); "
            "run against an existing backend instead (URL, --auth ...)"
        ) from exc
    return servers


def _backend_env(items: list[str]) -> dict[str, str]:
    """--backend-env NAME=VALUE options as a dict; ValueError for an item without '='."""
    env = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep:
            raise ValueError(f"--backend-env needs NAME=VALUE, got {item!r}")
        env[name] = value
    return env


def _skip_missing_assets(assets: Path, selected: list[str]) -> tuple[list[str], list[Result]]:
    """(the work packages that have their assets, one skipped row for each of the others)."""
    missing = check_assets(assets)
    missing_any = [wp for wp in selected if missing[wp]]
    if not missing_any:
        return selected, []
    message = f"assets missing in {assets}: " + ", ".join(sorted({p for wp in missing_any for p in missing[wp]}))
    print(f"[conformance] {message}\n{ASSETS_HELP}", file=sys.stderr)
    skipped = [
        Result(suite_directory(wp), "skipped",
               f"assets missing in {assets}: {', '.join(missing[wp])}; clone "
               "Open-EO/openeo-test-suite with --recurse-submodules and pass its root as --assets")
        for wp in missing_any
    ]
    return [wp for wp in selected if wp not in missing_any], skipped


def _stale_entries(results: list[Result], expected: list[ExpectedFailure], *,
                   all_tests_ran: bool) -> list[ExpectedFailure]:
    """Mark the expected failures; the entries that matched no failure in a work package that ran."""
    ran = {r.work_package for r in results if r.outcome not in ("skipped",) or "::" in r.nodeid}
    unused = apply_expected_failures(results, expected)
    if not all_tests_ran:  # with extra pytest args (-k ...) not every test ran
        return []
    return [e for e in unused
            if any(e.pattern.startswith(suite_directory(wp)) for wp in ran if wp in WORK_PACKAGES)]


def _exit_code(results: list[Result], stale_entries: list[ExpectedFailure], *,
               failed_setup: bool, strict: bool) -> int:
    unexpected = [r for r in results if r.outcome in ("failed", "error")]
    if stale_entries:
        print(f"[conformance] {len(stale_entries)} expected-failure entr(y/ies) matched no failure (fixed? "
              "remove them): " + ", ".join(e.pattern for e in stale_entries), file=sys.stderr)
    if unexpected:
        print(f"[conformance] {len(unexpected)} unexpected failure(s)/error(s)", file=sys.stderr)
        return 2 if failed_setup else 1
    if failed_setup:
        return 2
    if stale_entries and strict:
        return 1
    return 0
