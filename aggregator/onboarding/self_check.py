"""The onboarding self-check: every check against a candidate backend, in parallel, within a deadline.

    report = run_self_check("https://partner.example/openeo/1.2/",
                            credentials=CheckCredentials(username="u", password="p"),
                            options=CheckOptions(federation_issuers=("https://idp.example/realm",)))
    report.passed, report.checks   # [CheckResult(name, status, detail), ...] in CHECK order

Each call has its own timeouts (CheckOptions); a check still running at the deadline is reported failed,
so a candidate that accepts connections and never answers cannot hold the caller.
"""

from __future__ import annotations

import logging
import time
from concurrent.futures import ThreadPoolExecutor, TimeoutError as FutureTimeout
from typing import Callable

from aggregator.federation.errors import UpstreamError
from aggregator.onboarding import checks_discovery, checks_metadata, checks_processing
from aggregator.onboarding.candidate import Candidate, CheckCredentials, CheckOptions, explain
from aggregator.onboarding.results import CheckResult, SelfCheckReport, failed

log = logging.getLogger(__name__)

Check = Callable[[Candidate], CheckResult]

CHECKS: tuple[tuple[str, Check], ...] = (
    ("well_known", checks_discovery.well_known),
    ("api_version", checks_discovery.api_version),
    ("oidc_issuer", checks_discovery.oidc_issuer),
    ("health", checks_discovery.health),
    ("collections", checks_metadata.collections),
    ("processes", checks_metadata.processes),
    ("file_formats", checks_metadata.file_formats),
    ("sync_result", checks_processing.sync_result),
    ("signed_urls", checks_processing.signed_urls),
    ("cors", checks_discovery.cors),
)


def run_self_check(url: str, *, credentials: CheckCredentials | None = None,
                   options: CheckOptions = CheckOptions(), backend_id: str = "candidate") -> SelfCheckReport:
    started = time.monotonic()
    try:
        candidate = Candidate(url, credentials=credentials, options=options, backend_id=backend_id)
    except ValueError as exc:  # pydantic's ValidationError too
        errors = getattr(exc, "errors", None)
        reason = errors()[0]["msg"] if errors else str(exc)
        return SelfCheckReport(url, [failed("url", f"{url!r} cannot be a backend's API root: {reason}")])
    pool = ThreadPoolExecutor(max_workers=len(CHECKS), thread_name_prefix="self-check")
    try:
        futures = [(name, pool.submit(_run, name, check, candidate)) for name, check in CHECKS]
        deadline = started + options.deadline
        results = []
        for name, future in futures:
            try:
                results.append(future.result(timeout=max(0.0, deadline - time.monotonic())))
            except FutureTimeout:
                results.append(failed(name, f"no result within the self-check's deadline of {options.deadline:g} s"))
    finally:
        pool.shutdown(wait=False, cancel_futures=True)  # a straggler ends at its own read timeout
    return SelfCheckReport(candidate.url, results, time.monotonic() - started)


def _run(name: str, check: Check, candidate: Candidate) -> CheckResult:
    try:
        return check(candidate)
    except UpstreamError as error:
        return failed(name, explain(error))
    except Exception as exc:  # e.g. a document of the wrong shape that the schema check let through
        log.warning("self-check %s of %s failed unexpectedly", name, candidate.url, exc_info=True)
        return failed(name, f"the answer could not be checked ({type(exc).__name__}: {exc})")
