"""Checks of how a candidate backend is found and reached: well-known discovery, API version, shared OIDC
issuer, unauthenticated /health, CORS. Each takes the ``Candidate`` and returns a ``CheckResult``; an
``UpstreamError`` escaping a check is reported by the runner as that check's failure."""

from __future__ import annotations

import re

from aggregator.auth.directory import discover, normalise_issuer
from aggregator.federation.errors import UpstreamError
from aggregator.onboarding.candidate import Candidate, explain, http_status
from aggregator.onboarding.documents import valid_document
from aggregator.onboarding.openapi import response_problems
from aggregator.onboarding.results import CheckResult, failed, passed, skipped

# Headers the JS client and the Web Editor read from responses (see CLIENTS.md).
EXPOSED_HEADERS = ("Location", "OpenEO-Identifier", "OpenEO-Costs", "Link")
MIN_MINOR_VERSION = 1  # API 1.1 to 1.x: what the federation's 1.2 API can pass through


def well_known(c: Candidate) -> CheckResult:
    name = "well_known"
    where = f"{c.server_root}.well-known/openeo"
    document = valid_document(name, lambda: c.server_json(".well-known/openeo"), where, "/.well-known/openeo",
                              advice=": serve the openEO well-known document at the server root, listing this "
                                     "API root under `versions`",
                              invalid=f"GET {where} is not a valid well-known document")
    if isinstance(document, CheckResult):
        return document
    versions = {v["url"].rstrip("/"): v for v in document["versions"]}
    entry = versions.get(c.url.rstrip("/"))
    if entry is None:
        listed = ", ".join(versions) or "no version"
        return failed(name, f"{where} lists {listed} but not {c.url}: register one of the listed URLs, "
                            "or list this one there")
    return passed(name, f"{where} lists {c.url} (api_version {entry.get('api_version')})")


def api_version(c: Candidate) -> CheckResult:
    name = "api_version"
    try:
        capabilities = c.api_json("")
    except UpstreamError as error:
        return failed(name, f"GET {c.url} (capabilities) {explain(error)}: the URL must be the backend's "
                            "versioned openEO API root")
    version = capabilities.get("api_version")
    match = re.fullmatch(r"1\.(\d+)\.\d+(?:[-+].*)?", version) if isinstance(version, str) else None
    if match is None or int(match.group(1)) < MIN_MINOR_VERSION:
        return failed(name, f"api_version is {version!r}: the federation speaks openEO API 1.2; serve API "
                            f"1.{MIN_MINOR_VERSION} or later (1.x) at this URL")
    problems = response_problems("GET", "/", capabilities)
    if problems:
        return failed(name, f"GET {c.url} (capabilities) is not valid openEO: {'; '.join(problems)}")
    return passed(name, f"api_version {version}, backend_version {capabilities.get('backend_version')}, "
                        f"{len(capabilities.get('endpoints') or [])} endpoints")


def oidc_issuer(c: Candidate) -> CheckResult:
    name = "oidc_issuer"
    ours = {normalise_issuer(issuer) for issuer in c.options.federation_issuers}
    if not ours:
        return skipped(name, "the federation has no OIDC providers configured: users reach this backend "
                             "with basic credentials exchanged per backend")
    try:
        info = discover(c.api)
    except UpstreamError as error:
        return failed(name, f"its OIDC providers could not be read: {explain(error)}")
    shared = sorted(ours & set(info.providers))
    if shared:
        return passed(name, "trusts the federation's issuer " + ", ".join(
            f"{issuer} (provider '{info.providers[issuer]}')" for issuer in shared))
    theirs = ", ".join(sorted(info.providers)) or "no OIDC provider"
    return failed(name, f"it trusts {theirs}; the federation's issuers are {', '.join(sorted(ours))}: add one of "
                        "them to its OIDC providers (GET /credentials/oidc) so users' tokens pass through")


def health(c: Candidate) -> CheckResult:
    """``/health`` at the server root (ours), else under the API root (openeo-python-driver's)."""
    name = "health"
    answers = []
    for upstream, shown in ((c.server, f"{c.server_root}health"), (c.api, f"{c.url}health")):
        try:
            with upstream.request("GET", "health", stream=True) as response:
                return passed(name, f"GET {shown} answered HTTP {response.status_code} without authentication")
        except UpstreamError as error:
            status = http_status(error)
            if status in (401, 403):
                return failed(name, f"GET {shown} answered HTTP {status}: /health must answer without "
                                    "authentication")
            answers.append(f"GET {shown} {explain(error)}")
    return failed(name, "; ".join(answers) + ": serve an unauthenticated /health (200 when healthy)")


def cors(c: Candidate) -> CheckResult:
    """A browser's preflight for an authenticated GET, then the headers of the real answer."""
    name = "cors"
    origin = c.options.cors_origin
    preflight = {"Origin": origin, "Access-Control-Request-Method": "GET",
                 "Access-Control-Request-Headers": "authorization"}
    try:
        with c.api.request("OPTIONS", "collections", headers=preflight, stream=True) as response:
            headers = response.headers
    except UpstreamError as error:
        return failed(name, f"the preflight OPTIONS {c.url}collections {explain(error)}: answer OPTIONS on "
                            "every endpoint with 2xx and Access-Control-Allow-* headers")
    problems = []
    if headers.get("Access-Control-Allow-Origin") not in ("*", origin):
        problems.append(f"Access-Control-Allow-Origin is {headers.get('Access-Control-Allow-Origin')!r} "
                        f"(expected * or {origin})")
    allowed_headers = _tokens(headers.get("Access-Control-Allow-Headers"))
    if "authorization" not in allowed_headers:  # a wildcard does not cover Authorization (Fetch standard)
        problems.append("Access-Control-Allow-Headers does not name Authorization")
    allowed_methods = _tokens(headers.get("Access-Control-Allow-Methods"))
    if allowed_methods and not allowed_methods & {"get", "*"}:
        problems.append("Access-Control-Allow-Methods does not include GET")
    try:
        with c.api.request("GET", "", headers={"Origin": origin}, stream=True) as response:
            headers = response.headers
    except UpstreamError as error:
        return failed(name, f"GET {c.url} with an Origin header {explain(error)}")
    if headers.get("Access-Control-Allow-Origin") not in ("*", origin):
        problems.append("GET answers have no Access-Control-Allow-Origin")
    exposed = _tokens(headers.get("Access-Control-Expose-Headers"))
    missing = [h for h in EXPOSED_HEADERS if h.lower() not in exposed]
    if missing:
        problems.append(f"Access-Control-Expose-Headers lacks {', '.join(missing)} (browser clients read them)")
    if problems:
        return failed(name, "; ".join(problems))
    return passed(name, f"preflight and answers allow origin {origin} with Authorization; exposes "
                        + ", ".join(EXPOSED_HEADERS))


def _tokens(value: str | None) -> set[str]:
    return {part.strip().lower() for part in (value or "").split(",") if part.strip()}
