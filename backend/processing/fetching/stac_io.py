"""pystac / pystac-client StacIO classes that read through a Fetcher (so through the policy).

Imported on first use by the package (``fetching.GuardedStacIO``), so importing the package, e.g.
from settings, does not import pystac.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlencode, urlsplit, urlunsplit

import pystac
from pystac.stac_io import DefaultStacIO
from pystac_client.stac_api_io import StacApiIO

from backend.processing.fetching.transport import Fetcher


def _href_of(source: Any) -> str:
    if isinstance(source, pystac.Link):
        return source.get_absolute_href() or source.href
    return str(source)


class GuardedStacIO(DefaultStacIO):
    """pystac reads through a Fetcher: remote URLs under the policy, local files never."""

    def __init__(self, fetcher: Fetcher):
        super().__init__()
        self.fetcher = fetcher

    def read_text(self, source: Any, *args: Any, **kwargs: Any) -> str:
        return self.fetcher.fetch_text(_href_of(source))

    def read_text_from_href(self, href: str) -> str:
        return self.fetcher.fetch_text(href)

    def write_text(self, dest: Any, txt: str, *args: Any, **kwargs: Any) -> None:
        raise self.fetcher.refuse("STAC documents are only read, never written")


class GuardedStacApiIO(StacApiIO):
    """pystac-client requests (GET and POST item search, next links) through a Fetcher."""

    def __init__(self, fetcher: Fetcher):
        super().__init__(max_retries=None)
        self.fetcher = fetcher

    def read_text(self, source: Any, *args: Any, **kwargs: Any) -> str:
        if isinstance(source, pystac.Link):
            return super().read_text(source, *args, **kwargs)  # -> self.request with the link's method
        return self.request(str(source), *args, **kwargs)

    def request(self, href: str, method: str | None = None, headers: dict[str, str] | None = None,
                parameters: dict[str, Any] | None = None) -> str:
        method = (method or "GET").upper()
        if method == "POST":
            body = json.dumps(parameters or {}).encode()
            return self.fetcher.fetch_text(href, method="POST", body=body,
                                           headers={"Content-Type": "application/json"})
        if method != "GET":
            raise self.fetcher.refuse(f"{method} requests are not made")
        if parameters:
            parts = urlsplit(href)
            query = "&".join(q for q in (parts.query, urlencode(parameters, doseq=True)) if q)
            href = urlunsplit((parts.scheme, parts.netloc, parts.path, query, parts.fragment))
        return self.fetcher.fetch_text(href)

    def write_text_to_href(self, href: str, *args: Any, **kwargs: Any) -> None:
        raise self.fetcher.refuse("STAC documents are only read, never written")
