"""What the runner asks the backend under test: its API URL, and its name and version."""

from __future__ import annotations

import sys
from urllib.parse import urlsplit

from conformance.errors import RunnerError


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
