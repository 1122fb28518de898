"""The results as Markdown tables (console, RESULTS.md) and JSON, with the run's metadata."""

from __future__ import annotations

import dataclasses
import datetime
import json
import shlex
import sys
from pathlib import Path

from conformance.results import ExpectedFailure, Result
from conformance.work_packages import WORK_PACKAGES

REPO_ROOT = Path(__file__).resolve().parents[1]

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
SECRET_OPTIONS = ("--client-secret", "--password")


def _md(text: str) -> str:
    return str(text).replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ")


def render_markdown(results: list[Result], meta: dict, *, include_passed: bool = True) -> str:
    lines = ["# openEO conformance results (openeo-test-suite WP2, WP3, WP4, WP5, WP6)", ""]
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


def _started_by(args) -> str:
    if getattr(args, "federation", False):
        return " (the aggregator in front of two backends, all started by --self-contained --federation)"
    return " (started by --self-contained)" if args.self_contained else ""


def run_metadata(args, argv: list[str], *, started: datetime.datetime, api_url: str, backend: dict,
                 auth_text: str, expected: list[ExpectedFailure]) -> dict[str, str]:
    """The header lines of the results: when, against what, how (secrets in the command hidden)."""
    command = "python conformance/run.py " + shlex.join(_redact(argv))
    return {
        "Date": started.strftime("%Y-%m-%d %H:%M UTC"),
        "Backend": f"`{api_url}`" + _started_by(args),
        "Backend version": ", ".join(f"{k} `{v}`" for k, v in backend.items() if v),
        "Test suite": f"openeo-test-suite {suite_version()} (PyPI); assets `{args.assets}`",
        "Authentication (WP4, WP5, WP6)": auth_text,
        "Sentinel-2 collection (WP6)": f"`{args.s2_collection}`" if args.s2_collection else "none (WP6 skipped)",
        "Command": f"`{command}`",
        "Suite workarounds": ("none (suite as installed)" if args.no_suite_workarounds else
                              "absolute WP4 asset paths, WP4 job waits end at final job statuses; WP5: `$ref` "
                              "paths, NaN/±Infinity tests skipped (JSON-only runner), callbacks sent "
                              "(`conformance/suite_workarounds.py`)"
                              + ("; **corrected OpenAPI validation** (OpenAPI 3.0 validator; oneOf→anyOf in "
                                 "process_json_schema and collection summaries)"
                                 if args.corrected_openapi_validation else "")),
        "Expected failures": (f"`{_rel(args.expected_failures)}` ({len(expected)} entries)"
                              if expected else "none"),
    }


def publish(results: list[Result], meta: dict, args) -> None:
    """The table on stdout (--only-problems: without passes), and the --write-results/--json files."""
    print()
    print(render_markdown(results, meta, include_passed=not args.only_problems))
    if args.write_results:
        args.write_results.parent.mkdir(parents=True, exist_ok=True)
        args.write_results.write_text(render_markdown(results, meta) + "\n", encoding="utf-8")
        print(f"[conformance] wrote {args.write_results}", file=sys.stderr)
    if args.json:
        args.json.write_text(json.dumps({"meta": meta, "results": [dataclasses.asdict(r) for r in results]},
                                        indent=1), encoding="utf-8")


def suite_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("openeo-test-suite")
    except PackageNotFoundError:
        return "?"


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
        if name in SECRET_OPTIONS:
            if "=" in item:
                out.append(f"{name}=***")
            else:
                out.append(item)
                hide = True
            continue
        out.append(item)
    return out
