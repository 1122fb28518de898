"""The test provider's error, and turning a refused HTTP request into it."""

from __future__ import annotations

import requests


class OidcTestServerError(RuntimeError):
    """The test provider failed to start or refused a request."""


def snippet(resp: requests.Response, limit: int = 800) -> str:
    return resp.text[:limit]


def raise_for(resp: requests.Response, what: str) -> None:
    if resp.status_code >= 400:
        raise OidcTestServerError(f"{what} failed: {resp.status_code} {snippet(resp)}")
