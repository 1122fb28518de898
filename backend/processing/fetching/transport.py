"""The guarded HTTP read: checked address only, same-host redirects, size and time limits.

urllib3 connects to the address the policy vetted (the name is not resolved a second time, so DNS
rebinding cannot swap in another address) while TLS is still verified against the host name.
Environment proxies and ~/.netrc are not used.
"""

from __future__ import annotations

import json
import ssl
import threading
import time
from typing import Any
from urllib.parse import urljoin, urlsplit

import urllib3

from apicore import errors
from backend.processing.fetching.policy import FetchPolicy, Refused, Target, check_addresses, policy_for, resolve

MAX_REDIRECTS = 5
CHUNK = 64 * 1024
USER_AGENT = "openeo-backend (fetching user-given URLs)"


class Fetcher:
    """Reads URLs under a policy; errors are ProcessParameterInvalid of ``process``/``parameter``."""

    def __init__(self, policy: FetchPolicy, process: str, parameter: str, *, max_documents: int | None = None):
        self.policy = policy
        self.process = process
        self.parameter = parameter
        self.max_documents = max_documents
        self._count = 0
        self._lock = threading.Lock()

    def refuse(self, reason: str) -> errors.OpenEOError:
        return errors.ProcessParameterInvalid(process=self.process, parameter=self.parameter, reason=reason)

    # checks ----------------------------------------------------------------------------------

    def check(self, url: Any) -> Target:
        """The URL checked against the policy (resolving its host); raises the openEO error."""
        try:
            target = self.policy.check_url(url)
            return check_addresses(target, resolve(target.host, target.port))
        except Refused as exc:
            raise self.refuse(str(exc)) from None

    def check_href(self, href: str) -> Target:
        """Check a URL found inside a fetched document (e.g. an asset): the checked target, whose addresses
        are the only ones its reads may connect to (pixel reads: ``ranges``)."""
        return self.check(href)

    # reading ---------------------------------------------------------------------------------

    def _count_document(self) -> None:
        if self.max_documents is None:
            return
        with self._lock:
            self._count += 1
            if self._count > self.max_documents:
                raise self.refuse(f"reading it needs more than {self.max_documents} documents; "
                                  "give a narrower STAC URL (an item, or a STAC API collection)")

    def fetch(self, url: str, *, method: str = "GET", body: bytes | None = None,
              headers: dict[str, str] | None = None) -> bytes:
        """The body of a 2xx response, following same-host redirects; raises the openEO error."""
        self._count_document()
        target = self.check(url)
        for _ in range(MAX_REDIRECTS + 1):
            status, location, content = self._request(target, method, body, headers)
            if status in (301, 302, 303, 307, 308) and location:
                next_url = urljoin(target.url, location)
                next_host = (urlsplit(next_url).hostname or "").lower().rstrip(".")
                if next_host != target.host:
                    raise self.refuse(f"{target.url} redirects to another host ({next_host}); "
                                      "redirects are only followed on the same host")
                if status == 303:
                    method, body = "GET", None
                target = self.check(next_url)
                continue
            if not 200 <= status < 300:
                snippet = content[:300].decode("utf-8", "replace").strip()
                raise self.refuse(f"{target.url} answered HTTP {status}" + (f": {snippet}" if snippet else ""))
            return content
        raise self.refuse(f"{url} redirects more than {MAX_REDIRECTS} times")

    def _request(self, target: Target, method: str, body: bytes | None,
                 headers: dict[str, str] | None) -> tuple[int, str | None, bytes]:
        timeout = urllib3.Timeout(connect=self.policy.timeout, read=self.policy.timeout)
        sent = {"User-Agent": USER_AGENT, "Accept": "application/json, application/geo+json, */*",
                "Accept-Encoding": "gzip, deflate", **(headers or {}), "Host": target.host_header}
        last_error: Exception | None = None
        for address in target.addresses:  # every one of them passed the checks
            pool = self._pool(target, address, timeout)
            try:
                response = pool.urlopen(method, target.path, body=body, headers=sent, redirect=False,
                                        retries=False, preload_content=False, decode_content=True,
                                        assert_same_host=False)
            except (urllib3.exceptions.NewConnectionError, urllib3.exceptions.ConnectTimeoutError) as exc:
                last_error = exc
                pool.close()
                continue
            except urllib3.exceptions.HTTPError as exc:
                pool.close()
                raise self.refuse(f"could not read {target.url}: {_reason(exc)}") from None
            try:
                return response.status, response.headers.get("Location"), self._read_body(response, target)
            finally:
                response.release_conn()
                pool.close()
        raise self.refuse(f"could not connect to {target.url}: {_reason(last_error)}")

    def _pool(self, target: Target, address: str, timeout: urllib3.Timeout) -> urllib3.HTTPConnectionPool:
        return connection_pool(target.scheme, target.host, target.port, address, timeout)

    def _read_body(self, response, target: Target) -> bytes:
        limit = self.policy.max_bytes
        declared = response.headers.get("Content-Length")
        if declared and declared.isdigit() and int(declared) > limit \
                and not response.headers.get("Content-Encoding"):
            raise self.too_large(target.url)
        deadline = time.monotonic() + self.policy.timeout * 4  # a slow drip must end, too
        chunks, size = [], 0
        try:
            for chunk in response.stream(CHUNK, decode_content=True):
                size += len(chunk)
                if size > limit:
                    raise self.too_large(target.url)
                if time.monotonic() > deadline:
                    raise self.refuse(f"reading {target.url} took longer than {self.policy.timeout * 4:g} s")
                chunks.append(chunk)
        except urllib3.exceptions.HTTPError as exc:
            raise self.refuse(f"could not read {target.url}: {_reason(exc)}") from None
        return b"".join(chunks)

    def too_large(self, url: str) -> errors.OpenEOError:
        return self.refuse(f"{url} is larger than the {self.policy.max_bytes:,} bytes this backend reads "
                           "(setting fetch_max_bytes)")

    def fetch_text(self, url: str, **kwargs: Any) -> str:
        content = self.fetch(url, **kwargs)
        try:
            return content.decode("utf-8-sig")
        except UnicodeDecodeError:
            raise self.refuse(f"{url} is not UTF-8 text") from None

    def fetch_json(self, url: str, **kwargs: Any) -> Any:
        text = self.fetch_text(url, **kwargs)
        try:
            return json.loads(text)
        except ValueError as exc:
            raise self.refuse(f"{url} is not valid JSON ({exc})") from None


def connection_pool(scheme: str, host: str, port: int, address: str, timeout: urllib3.Timeout,
                    maxsize: int = 1) -> urllib3.HTTPConnectionPool:
    """Connections to ``address`` (already checked) for ``host``: TLS verified against the host name."""
    common = dict(port=port, timeout=timeout, maxsize=maxsize, retries=False)
    if scheme == "https":
        context = ssl.create_default_context(cafile=_ca_file())
        return urllib3.HTTPSConnectionPool(address, ssl_context=context, server_hostname=host,
                                           assert_hostname=host, cert_reqs="CERT_REQUIRED", **common)
    return urllib3.HTTPConnectionPool(address, **common)


def _reason(exc: BaseException | None) -> str:
    if exc is None:
        return "no address answered"
    reason = getattr(exc, "reason", None) or exc
    text = str(reason)
    return text.split(": ", 1)[-1] if text.startswith("<") else text


def _ca_file() -> str | None:
    try:
        import certifi
    except ImportError:  # pragma: no cover - requests depends on certifi
        return None
    return certifi.where()


def fetch_json(url: str, run_context: Any = None, *, process: str = "aggregate_spatial",
               parameter: str = "geometries") -> Any:
    """JSON from a user-given URL under the run's policy (see the package doc for what is refused)."""
    return Fetcher(policy_for(run_context), process, parameter).fetch_json(url)
