"""The step the listing checks begin with: GET a document and validate it against the openEO API's schema;
when either fails, the check's answer names the request (the runner would only say why)."""

from __future__ import annotations

from typing import Callable

from aggregator.federation.errors import UpstreamError
from aggregator.onboarding.candidate import explain
from aggregator.onboarding.openapi import response_problems
from aggregator.onboarding.results import CheckResult, failed


def valid_document(name: str, fetch: Callable[[], dict], shown: str, schema_path: str | None = None, *,
                   advice: str = "", invalid: str | None = None) -> dict | CheckResult:
    """What ``fetch()`` returned once the schema of ``GET schema_path`` (default ``shown``) accepts it, else
    check ``name``'s failure: "GET {shown} {why}{advice}", or "{invalid}: {problems}" (default "GET {shown}
    is not valid openEO"). Callers return a ``CheckResult`` as it is."""
    try:
        document = fetch()
    except UpstreamError as error:
        return failed(name, f"GET {shown} {explain(error)}{advice}")
    problems = response_problems("GET", schema_path or shown, document)
    if problems:
        return failed(name, f"{invalid or f'GET {shown} is not valid openEO'}: {'; '.join(problems)}")
    return document
