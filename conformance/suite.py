"""Running the installed openEO test suite with pytest, in a child process, with our plugins."""

from __future__ import annotations

import importlib.util
import os
import shlex
import subprocess
import sys
from pathlib import Path

from conformance.results import Result, read_results
from conformance.work_packages import PYTEST_OPTIONS, suite_directory

HERE = Path(__file__).resolve().parent
REPO_ROOT = HERE.parent
PYTEST_INI = HERE / "suite-pytest.ini"


def run_suite(args, extra: list[str], api_url: str, auth_env: dict[str, str], basic_wp4: bool,
              selected: list[str], workdir: Path) -> tuple[int, list[Result]]:
    """Run the ``selected`` work packages against ``api_url``; (pytest's exit code, results)."""
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
    cmd += _stac_schema_options(args, selected)
    if basic_wp4:
        cmd.append("--conformance-basic-auth")
    if args.corrected_openapi_validation:
        cmd.append("--corrected-openapi-validation")
    for wp in selected:
        cmd += PYTEST_OPTIONS.get(wp, [])
    if "WP6" in selected:
        cmd += ["--s2-collection", args.s2_collection]
    cmd += [str(suite_dir / suite_directory(wp)) for wp in selected]
    cmd += extra

    cwd = args.assets if args.assets.is_dir() else workdir
    env = {**os.environ, **auth_env}
    # the plugins are `conformance.*` modules of this checkout
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")]))
    env.setdefault("PYTHONDONTWRITEBYTECODE", "1")
    print(f"[conformance] (cd {shlex.quote(str(cwd))} && {shlex.join(cmd)})", file=sys.stderr)
    stdout = subprocess.DEVNULL if args.quiet else None
    code = subprocess.call(cmd, cwd=cwd, env=env, stdout=stdout)
    return code, read_results(results_file)


def _stac_schema_options(args, selected: list[str]) -> list[str]:
    """Offline STAC validation (conformance/stac_offline.py) with --stac-schemas or <assets>/stac-schemas."""
    stac_dir = args.stac_schemas
    if stac_dir is None and (args.assets / "stac-schemas").is_dir():
        stac_dir = args.assets / "stac-schemas"
    if stac_dir is None:
        if "WP2" in selected:
            print("[conformance] note: no STAC schema directory (--stac-schemas); stac-validator will download "
                  "the schemas (needs network)", file=sys.stderr)
        return []
    options = ["--stac-schemas-dir", str(Path(stac_dir).resolve())]
    if args.stac_schemas_allow_network:
        options.append("--stac-schemas-allow-network")
    return options


def _has_module(name: str) -> bool:
    return importlib.util.find_spec(name) is not None
