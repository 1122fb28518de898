#!/usr/bin/env python3
"""Run the official openEO test suite (openeo-test-suite, PyPI) against a backend.

Runs the suite's WP2 (collections), WP3 (process metadata) and WP4 (general API
compliance) tests, and prints a Markdown table: one row per test with passed / failed /
skipped / error and a one-line reason for everything that did not pass.

    .venv/bin/python conformance/run.py --self-contained
    .venv/bin/python conformance/run.py http://127.0.0.1:8080/openeo/1.2/ --auth basic \\
        --username alice --password secret
    .venv/bin/python conformance/run.py https://openeo.example.org/openeo/1.2/ \\
        --auth client_credentials --provider-id egi --client-id ... --client-secret ...

See conformance/README.md for all options, the assets the suite needs, the expected
failures file and the exit codes.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import datetime
import json
import os
import re
import shlex
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from urllib.parse import urlsplit

HERE = Path(__file__).resolve().parent
REPO_ROOT = HERE.parent
DEFAULT_ASSETS = REPO_ROOT.parent / "shared" / "conformance-assets"
DEFAULT_EXPECTED = HERE / "expected_failures.txt"
OIDC_HELPER = REPO_ROOT / "tests" / "support" / "oidc_server.py"
PYTEST_INI = HERE / "suite-pytest.ini"
SELF_CONTAINED_PROVIDER = "testidp"

# Work packages of the suite that this runner covers: directory below the installed
# ``openeo_test_suite`` package, and the asset paths (relative to --assets) they read.
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

RESULT_LABELS = {
    "passed": "passed",
    "failed": "FAILED",
    "error": "ERROR",
    "skipped": "skipped",
    "xfailed": "xfailed",
    "xpassed": "xpassed",
    "expected": "failed (expected)",
    "expected-error": "error (expected)",
}


class RunnerError(RuntimeError):
    """Set-up problem (backend/OIDC server does not start, bad options): exit code 2."""


# ---------------------------------------------------------------------------
# Results
# ---------------------------------------------------------------------------


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
        for wp, (directory, _, _) in WORK_PACKAGES.items():
            if self.nodeid.startswith(directory):
                return wp
        return "?"


@dataclasses.dataclass
class ExpectedFailure:
    pattern: str
    reason: str
    regex: re.Pattern
    used: bool = False


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


def read_results(path: Path) -> list[Result]:
    results = []
    if path.is_file():
        for line in path.read_text(encoding="utf-8").splitlines():
            data = json.loads(line)
            results.append(
                Result(data["nodeid"], data["outcome"], data.get("reason", ""), data.get("details", ""))
            )
    return results


def _md(text: str) -> str:
    return str(text).replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ")


def render_markdown(results: list[Result], meta: dict, *, include_passed: bool = True) -> str:
    lines = ["# openEO conformance results (openeo-test-suite WP2, WP3, WP4)", ""]
    for key, value in meta.items():
        lines.append(f"- {key}: {value}")
    lines.append("")

    columns = ["passed", "failed", "expected", "error", "skipped"]
    lines += [
        "## Summary",
        "",
        "| Work package | Test module | passed | failed | expected failures | error | skipped | total |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    modules: dict[str, list[Result]] = {}
    for result in results:
        modules.setdefault(result.module, []).append(result)
    totals = dict.fromkeys(columns, 0)
    for module, items in modules.items():
        counts = dict.fromkeys(columns, 0)
        for r in items:
            key = {"expected-error": "expected", "xfailed": "skipped", "xpassed": "passed"}.get(
                r.outcome, r.outcome
            )
            counts[key] = counts.get(key, 0) + 1
        for key in columns:
            totals[key] += counts[key]
        lines.append(
            f"| {items[0].work_package} | `{module}` | "
            + " | ".join(str(counts[c]) for c in columns)
            + f" | {len(items)} |"
        )
    lines.append(
        "| **all** | | " + " | ".join(f"**{totals[c]}**" for c in columns) + f" | **{len(results)}** |"
    )
    lines.append("")

    for module, items in modules.items():
        wp = items[0].work_package
        title = WORK_PACKAGES.get(wp, ("", "", []))[1]
        lines += [f"## {wp} {title}: `{module}`", "", "| Test | Result | Reason |", "|---|---|---|"]
        shown = 0
        for r in items:
            if r.outcome == "passed" and not include_passed and not r.note:
                continue
            reason = r.reason
            if r.note:
                reason = f"{reason} — *{r.note}*" if reason else f"*{r.note}*"
            lines.append(f"| `{_md(r.test)}` | {RESULT_LABELS.get(r.outcome, r.outcome)} | {_md(reason)} |")
            shown += 1
        if not shown:
            lines.append("| (all passed) | passed | |")
        lines.append("")
    return "\n".join(lines)


# ---------------------------------------------------------------------------
# Processes: OIDC test server, backend
# ---------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _tail(path: Path, lines: int = 40) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def _stop(proc: subprocess.Popen | None, name: str) -> None:
    if proc is None or proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(20)
    except subprocess.TimeoutExpired:
        print(f"[conformance] {name} (pid {proc.pid}) did not stop on SIGTERM; killing it", file=sys.stderr)
        proc.kill()
        proc.wait(10)


@contextlib.contextmanager
def oidc_test_server(workdir: Path, timeout: float):
    """Start tests/support/oidc_server.py (Canaille via pytest-iam); yield its JSON info."""
    if not OIDC_HELPER.is_file():
        raise RunnerError(
            f"--self-contained needs the OIDC test server {OIDC_HELPER} (not found); "
            "run against an existing backend instead (URL, --auth ...)"
        )
    log_path = workdir / "oidc-server.log"
    log = open(log_path, "w")
    # Run the file by path: canaille's wheel installs a top-level `tests` package that can
    # shadow this repository's `tests` in `python -m tests.support.oidc_server`.
    cmd = [sys.executable, str(OIDC_HELPER), "--port", "0"]
    proc = subprocess.Popen(
        cmd, cwd=REPO_ROOT, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=log,
        text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        line: list[str] = []
        reader = threading.Thread(target=lambda: line.append(proc.stdout.readline()), daemon=True)
        reader.start()
        reader.join(timeout)
        if not line or not line[0].strip():
            raise RunnerError(
                f"OIDC test server did not start within {timeout:.0f}s "
                f"(exit code {proc.poll()}); log {log_path}:\n{_tail(log_path)}"
            )
        info = json.loads(line[0])
        print(f"[conformance] OIDC test server: {info['issuer']} (pid {proc.pid}), client {info['client_id']}",
              file=sys.stderr)
        yield info
    finally:
        _stop(proc, "OIDC test server")
        if proc.stdout:
            proc.stdout.close()
        log.close()


def _backend_command() -> list[str]:
    candidate = Path(sys.executable).parent / "openeo-backend"
    if candidate.is_file():
        return [str(candidate)]
    found = shutil.which("openeo-backend")
    if found:
        return [found]
    return [sys.executable, "-m", "backend.cli"]


@contextlib.contextmanager
def local_backend(workdir: Path, oidc: dict, extra_env: dict[str, str], timeout: float,
                  advertise_client_credentials: bool = False):
    """Start our backend (`openeo-backend serve`) on a free port; yield its root URL."""
    import requests

    port = free_port()
    data_dir = workdir / "data"
    data_dir.mkdir()
    provider = {"id": SELF_CONTAINED_PROVIDER, "issuer": oidc["issuer"], "title": "Test IdP", "scopes": ["openid"]}
    if advertise_client_credentials:
        # openEO API 1.2 has no "client_credentials" among a default client's grant_types, and the
        # client-credentials flow of the Python client needs no default client: off by default.
        provider["default_clients"] = [{"id": oidc["client_id"], "grant_types": ["client_credentials"]}]
    providers = [provider]
    env = {**os.environ, "OPENEO_BACKEND_OIDC_PROVIDERS": json.dumps(providers), **extra_env}
    cmd = _backend_command() + ["serve", "--host", "127.0.0.1", "--port", str(port), "--data-dir", str(data_dir)]
    log_path = workdir / "backend.log"
    log = open(log_path, "w")
    print(f"[conformance] starting backend: {shlex.join(cmd)}", file=sys.stderr)
    proc = subprocess.Popen(cmd, cwd=REPO_ROOT, stdin=subprocess.DEVNULL, stdout=log,
                            stderr=subprocess.STDOUT, env=env)
    root = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + timeout
        while True:
            if proc.poll() is not None:
                raise RunnerError(
                    f"backend exited during start-up (exit code {proc.returncode}); "
                    f"log {log_path}:\n{_tail(log_path)}"
                )
            try:
                if requests.get(root + "/.well-known/openeo", timeout=5).status_code == 200:
                    break
            except requests.RequestException:
                pass
            if time.monotonic() > deadline:
                raise RunnerError(f"backend not up after {timeout:.0f}s; log {log_path}:\n{_tail(log_path)}")
            time.sleep(0.5)
        print(f"[conformance] backend: {root} (pid {proc.pid}), data dir {data_dir}", file=sys.stderr)
        yield root
    finally:
        _stop(proc, "backend")
        log.close()


# ---------------------------------------------------------------------------
# Backend URL and metadata
# ---------------------------------------------------------------------------


def resolve_api_url(url: str) -> str:
    """The versioned API URL with a trailing slash.

    The WP4 tests build URLs as ``f"{base_url}{path}"`` (no separator), and take the URL
    as given when its path contains "openeo", otherwise the last entry of
    /.well-known/openeo.  So: a root URL is resolved here through /.well-known/openeo
    (preferring API 1.2.x), and the result always ends in "/".
    """
    import requests

    if "://" not in url:
        url = "https://" + url
    path = urlsplit(url).path
    if not path.strip("/"):
        root = url.rstrip("/")
        try:
            versions = requests.get(root + "/.well-known/openeo", timeout=30).json()["versions"]
        except Exception as exc:
            raise RunnerError(f"cannot read {root}/.well-known/openeo: {exc}") from exc
        versions = [v for v in versions if v.get("url")]
        if not versions:
            raise RunnerError(f"{root}/.well-known/openeo lists no API versions")
        preferred = [v for v in versions if str(v.get("api_version", "")).startswith("1.2")]
        url = (preferred or versions)[-1]["url"]
    if not url.endswith("/"):
        url += "/"
    if "openeo" not in urlsplit(url).path:
        print(
            f"[conformance] note: the API URL path of {url} has no 'openeo' in it; the WP4 tests "
            "then use the last version listed in /.well-known/openeo instead",
            file=sys.stderr,
        )
    return url


def backend_metadata(api_url: str) -> dict:
    import requests

    try:
        data = requests.get(api_url, timeout=30).json()
    except Exception as exc:
        return {"error": str(exc)}
    return {k: data.get(k) for k in ("title", "id", "backend_version", "api_version")}


def suite_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("openeo-test-suite")
    except PackageNotFoundError:
        return "?"


# ---------------------------------------------------------------------------
# Main
# ---------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> tuple[argparse.Namespace, list[str]]:
    argv = list(sys.argv[1:] if argv is None else argv)
    extra: list[str] = []
    if "--" in argv:
        index = argv.index("--")
        argv, extra = argv[:index], argv[index + 1 :]
    env = os.environ.get
    parser = argparse.ArgumentParser(
        description="Run the openEO test suite's WP2 (collections), WP3 (process metadata) and WP4 "
        "(general compliance) tests against a backend and print a results table. Arguments after "
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
                        help="work package(s) to run (repeatable; default all: WP2 WP3 WP4)")

    auth = parser.add_argument_group("authentication (WP4 only; WP2/WP3 need none)")
    auth.add_argument("--auth", choices=["client_credentials", "basic", "oidc-interactive", "none"],
                      default=env("OPENEO_AUTH_METHOD"),
                      help="client_credentials (what the suite expects: its WP4 tests call authenticate_oidc()); "
                      "basic (a deviation: WP4 tokens via basic auth); oidc-interactive (device code, "
                      "needs a person); none (skip WP4). Default env OPENEO_AUTH_METHOD, client_credentials "
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
    out.add_argument("--expected-failures", type=Path, default=DEFAULT_EXPECTED,
                     help=f"known failures, '<test id> <reason>' per line, '*' wildcards (default {DEFAULT_EXPECTED}; "
                     "'none' to ignore)")
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
    if str(args.expected_failures) == "none":
        args.expected_failures = None
    return args, extra


def check_assets(assets: Path) -> dict[str, list[str]]:
    """Missing asset paths per work package."""
    missing = {}
    for wp, (_, _, needed) in WORK_PACKAGES.items():
        missing[wp] = [p for p in needed if not (assets / p).exists()]
    return missing


def run_suite(args, extra: list[str], api_url: str, auth_env: dict[str, str], basic_wp4: bool,
              selected: list[str], workdir: Path) -> tuple[int, list[Result]]:
    import openeo_test_suite

    suite_dir = Path(openeo_test_suite.__file__).resolve().parent
    results_file = workdir / "results.jsonl"
    cmd = [
        sys.executable, "-m", "pytest",
        "-c", str(PYTEST_INI), "--rootdir", str(suite_dir),
        "-p", "openeo_test_suite.lib.pytest_plugin",
        "-p", "conformance.stac_offline",
        "-p", "conformance.results_plugin",
        *([] if args.no_suite_workarounds else ["-p", "conformance.suite_workarounds"]),
        "-p", "no:cacheprovider",  # no .pytest_cache in the suite's or the assets' directory
        "--conformance-results", str(results_file),
        "-U", api_url,
        "-o", "console_output_style=classic",
        "-rN", f"--tb={args.tb}",
    ]
    if _has_module("pytest_timeout") and args.timeout:
        cmd += ["--timeout", str(args.timeout)]
    stac_dir = args.stac_schemas
    if stac_dir is None and (args.assets / "stac-schemas").is_dir():
        stac_dir = args.assets / "stac-schemas"
    if stac_dir is not None:
        cmd += ["--stac-schemas-dir", str(Path(stac_dir).resolve())]
        if args.stac_schemas_allow_network:
            cmd.append("--stac-schemas-allow-network")
    elif "WP2" in selected:
        print("[conformance] note: no STAC schema directory (--stac-schemas); stac-validator will download "
              "the schemas (needs network)", file=sys.stderr)
    if basic_wp4:
        cmd.append("--conformance-basic-auth")
    if args.corrected_openapi_validation:
        cmd.append("--corrected-openapi-validation")
    cmd += [str(suite_dir / WORK_PACKAGES[wp][0]) for wp in selected]
    cmd += extra

    cwd = args.assets if args.assets.is_dir() else workdir
    env = {**os.environ, **auth_env}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")]))
    env.setdefault("PYTHONDONTWRITEBYTECODE", "1")
    print(f"[conformance] (cd {shlex.quote(str(cwd))} && {shlex.join(cmd)})", file=sys.stderr)
    stdout = subprocess.DEVNULL if args.quiet else None
    code = subprocess.call(cmd, cwd=cwd, env=env, stdout=stdout)
    return code, read_results(results_file)


def _has_module(name: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(name) is not None


def auth_settings(args, self_contained_oidc: dict | None) -> tuple[dict[str, str], bool, str | None, str]:
    """(environment for the suite, basic-auth deviation for WP4?, reason to skip WP4 or None, description)."""
    env: dict[str, str] = {}
    if self_contained_oidc is not None:
        env = {
            "OPENEO_AUTH_METHOD": "client_credentials",
            "OPENEO_AUTH_PROVIDER_ID": SELF_CONTAINED_PROVIDER,
            "OPENEO_AUTH_CLIENT_ID": self_contained_oidc["client_id"],
            "OPENEO_AUTH_CLIENT_SECRET": self_contained_oidc["client_secret"],
        }
        return env, False, None, (
            f"OIDC client credentials (provider `{SELF_CONTAINED_PROVIDER}`, local Canaille "
            f"server, client `{self_contained_oidc['client_id']}`)"
        )
    method = args.auth
    if method is None and args.client_id and args.client_secret:
        method = "client_credentials"
    if method == "client_credentials":
        if not (args.client_id and args.client_secret):
            raise RunnerError("--auth client_credentials needs --client-id and --client-secret "
                              "(or OPENEO_AUTH_CLIENT_ID / OPENEO_AUTH_CLIENT_SECRET)")
        env = {"OPENEO_AUTH_METHOD": "client_credentials", "OPENEO_AUTH_CLIENT_ID": args.client_id,
               "OPENEO_AUTH_CLIENT_SECRET": args.client_secret}
        if args.provider_id:
            env["OPENEO_AUTH_PROVIDER_ID"] = args.provider_id
        return env, False, None, f"OIDC client credentials (provider `{args.provider_id or 'default'}`)"
    if method == "basic":
        if not (args.username and args.password):
            raise RunnerError("--auth basic needs --username and --password")
        env = {"OPENEO_AUTH_METHOD": "basic", "OPENEO_AUTH_BASIC_USERNAME": args.username,
               "OPENEO_AUTH_BASIC_PASSWORD": args.password}
        return env, True, None, ("basic (deviation: the official WP4 tests use OIDC; their bearer token "
                                 "is obtained with basic auth here)")
    if method == "oidc-interactive":
        env = {"OPENEO_AUTH_METHOD": ""}
        if args.provider_id:
            env["OPENEO_AUTH_PROVIDER_ID"] = args.provider_id
        return env, False, None, "OIDC, interactive (device code / refresh token)"
    reason = ("WP4 needs authentication: the suite calls connection.authenticate_oidc(); give "
              "--auth client_credentials with --client-id/--client-secret/--provider-id "
              "(or --auth basic / --auth oidc-interactive)")
    return {"OPENEO_AUTH_METHOD": "none"}, False, reason, "none"


def main(argv: list[str] | None = None) -> int:
    args, extra = parse_args(argv)
    try:
        import openeo_test_suite  # noqa: F401
    except ImportError:
        print("openeo-test-suite is not installed in this Python: pip install 'openeo-test-suite==0.2.2' "
              "(or: pip install -e '.[test]')", file=sys.stderr)
        return 2
    args.assets = args.assets.expanduser().resolve()
    selected = args.wp or list(WORK_PACKAGES)
    selected = [wp for wp in WORK_PACKAGES if wp in selected]
    expected = load_expected_failures(args.expected_failures)
    extra_backend_env = {}
    for item in args.backend_env:
        name, sep, value = item.partition("=")
        if not sep:
            print(f"--backend-env needs NAME=VALUE, got {item!r}", file=sys.stderr)
            return 2
        extra_backend_env[name] = value

    synthetic: list[Result] = []
    missing = check_assets(args.assets)
    missing_any = [wp for wp in selected if missing[wp]]
    if missing_any:
        message = (f"assets missing in {args.assets}: "
                   + ", ".join(sorted({p for wp in missing_any for p in missing[wp]})))
        print(f"[conformance] {message}\n{ASSETS_HELP}", file=sys.stderr)
        for wp in missing_any:
            synthetic.append(Result(WORK_PACKAGES[wp][0], "skipped",
                                    f"assets missing in {args.assets}: {', '.join(missing[wp])}; clone "
                                    "Open-EO/openeo-test-suite with --recurse-submodules and pass its root as --assets"))
        selected = [wp for wp in selected if wp not in missing_any]

    workdir = Path(tempfile.mkdtemp(prefix="openeo-conformance-"))
    started = datetime.datetime.now(datetime.timezone.utc)
    failed_setup = False
    try:
        with contextlib.ExitStack() as stack:
            oidc = None
            if args.self_contained:
                oidc = stack.enter_context(oidc_test_server(workdir, args.startup_timeout))
                root = stack.enter_context(local_backend(workdir, oidc, extra_backend_env, args.startup_timeout,
                                                           args.advertise_client_credentials))
                api_url = resolve_api_url(root)
            else:
                api_url = resolve_api_url(args.url)
            auth_env, basic_wp4, skip_wp4, auth_text = auth_settings(args, oidc)
            if skip_wp4 and "WP4" in selected:
                print(f"[conformance] skipping WP4: {skip_wp4}", file=sys.stderr)
                synthetic.append(Result(WORK_PACKAGES["WP4"][0], "skipped", skip_wp4))
                selected.remove("WP4")
            meta_backend = backend_metadata(api_url)
            code, results = (0, [])
            if selected:
                code, results = run_suite(args, extra, api_url, auth_env, basic_wp4, selected, workdir)
                if code in (2, 3, 4):  # interrupted, internal error, usage error (5: nothing collected)
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
    ran = {r.work_package for r in results if r.outcome not in ("skipped",) or "::" in r.nodeid}
    stale_entries = [e for e in apply_expected_failures(results, expected)
                     if any(e.pattern.startswith(WORK_PACKAGES[wp][0]) for wp in ran if wp in WORK_PACKAGES)
                     and not extra]  # with extra pytest args (-k ...) not every test ran

    command = "python conformance/run.py " + shlex.join(_redact(sys.argv[1:] if argv is None else argv))
    meta = {
        "Date": started.strftime("%Y-%m-%d %H:%M UTC"),
        "Backend": f"`{api_url}`" + ("" if not args.self_contained else " (started by --self-contained)"),
        "Backend version": ", ".join(f"{k} `{v}`" for k, v in meta_backend.items() if v),
        "Test suite": f"openeo-test-suite {suite_version()} (PyPI); assets `{args.assets}`",
        "Authentication (WP4)": auth_text,
        "Command": f"`{command}`",
        "Suite workarounds": ("none (suite as installed)" if args.no_suite_workarounds else
                              "absolute WP4 asset paths (`conformance/suite_workarounds.py`)"
                              + ("; **corrected OpenAPI validation** (OpenAPI 3.0 validator; oneOf→anyOf in "
                                 "process_json_schema and collection summaries)"
                                 if args.corrected_openapi_validation else "")),
        "Expected failures": (f"`{_rel(args.expected_failures)}` ({len(expected)} entries)"
                              if expected else "none"),
    }
    print()
    print(render_markdown(results, meta, include_passed=not args.only_problems))
    if args.write_results:
        args.write_results.parent.mkdir(parents=True, exist_ok=True)
        args.write_results.write_text(render_markdown(results, meta) + "\n", encoding="utf-8")
        print(f"[conformance] wrote {args.write_results}", file=sys.stderr)
    if args.json:
        args.json.write_text(json.dumps({"meta": meta, "results": [dataclasses.asdict(r) for r in results]},
                                        indent=1), encoding="utf-8")

    unexpected = [r for r in results if r.outcome in ("failed", "error")]
    if stale_entries:
        print(f"[conformance] {len(stale_entries)} expected-failure entr(y/ies) matched no failure (fixed? "
              "remove them): " + ", ".join(e.pattern for e in stale_entries), file=sys.stderr)
    if unexpected:
        print(f"[conformance] {len(unexpected)} unexpected failure(s)/error(s)", file=sys.stderr)
        return 2 if failed_setup else 1
    if failed_setup:
        return 2
    if stale_entries and args.strict_expected:
        return 1
    return 0


def _rel(path: Path) -> str:
    try:
        return str(Path(path).resolve().relative_to(REPO_ROOT))
    except ValueError:
        return str(path)


def _redact(argv: list[str]) -> list[str]:
    out, hide = [], False
    for item in argv:
        if hide:
            out.append("***")
            hide = False
            continue
        name = item.split("=", 1)[0]
        if name in ("--client-secret", "--password"):
            if "=" in item:
                out.append(f"{name}=***")
            else:
                out.append(item)
                hide = True
            continue
        out.append(item)
    return out


if __name__ == "__main__":
    sys.exit(main())
