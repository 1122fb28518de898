"""The one place where the server fetches a URL a user gave it (load_stac, GeoJSON geometries by URL).

Fetching user-given URLs from inside the backend is server-side request forgery waiting to happen
(cloud metadata endpoints, databases and admin pages on the internal network, local files), so
every such read goes through a ``FetchPolicy``:

* schemes ``http`` and ``https`` only (no ``file://``, ``s3://``, GDAL ``/vsi...`` paths, local
  paths), no credentials in the URL;
* the host must be on the ``fetch_allowed_hosts`` setting: an exact name or IP address, ``*.suffix``
  (any subdomain of ``suffix``) or ``*`` (any host). This backend's own API root is always allowed;
* the host is resolved and EVERY address must be public (no loopback, private, link-local, CGNAT,
  multicast, reserved ...), unless the host is on the list by its exact name (an operator's
  explicit choice). The connection then goes to the checked address (the name is not resolved a
  second time, so DNS rebinding cannot swap in another address), with TLS still verified against
  the host name;
* redirects are followed (at most ``MAX_REDIRECTS``) only to the same host, each one checked again;
* a response larger than ``fetch_max_bytes`` (after decompression) is refused, and so is a
  connection or read slower than ``fetch_timeout``; environment proxies and ~/.netrc are not used.

A refused URL raises ``ProcessParameterInvalid`` naming the host and the setting that allows it.

    fetch_json(url, run_context, process="aggregate_spatial", parameter="geometries")
    Fetcher(policy_for(run_context), "load_stac", "url").fetch_json(url)
    GuardedStacIO(fetcher) / GuardedStacApiIO(fetcher)   # pystac / pystac-client reads
"""

from __future__ import annotations

import ipaddress
import json
import socket
import ssl
import threading
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode, urljoin, urlsplit, urlunsplit

import urllib3

from apicore import errors

MAX_REDIRECTS = 5
CHUNK = 64 * 1024
DEFAULT_MAX_BYTES = 32 * 1024 * 1024
DEFAULT_TIMEOUT = 30.0
SCHEMES = ("http", "https")
USER_AGENT = "openeo-backend (fetching user-given URLs)"

_default_lock = threading.Lock()
_default_settings: Any = None


# --- policy --------------------------------------------------------------------------------------


def normalize_host_pattern(entry: str) -> str:
    """A ``fetch_allowed_hosts`` entry in canonical form; raises ValueError for a malformed one."""
    if not isinstance(entry, str):
        raise ValueError(f"host pattern must be a string, got {entry!r}")
    text = entry.strip().lower().rstrip(".")
    if text.startswith("[") and text.endswith("]"):
        text = text[1:-1]
    if text == "*":
        return text
    bare = text[2:] if text.startswith("*.") else text
    if not bare or any(c in bare for c in "/:@?#* ") and not _is_ip(bare):
        raise ValueError(f"{entry!r} is not a host name or IP address, '*.domain' or '*' "
                         "(no scheme, port or path: e.g. 'data.example.org', '*.example.org', '10.0.0.5')")
    return str(ipaddress.ip_address(bare)) if _is_ip(bare) else text


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
        return True
    except ValueError:
        return False


def _public(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return address.is_global and not address.is_multicast


def _default_port(scheme: str) -> int:
    return 443 if scheme == "https" else 80


@dataclass(frozen=True)
class Target:
    """A checked URL: where to connect (``addresses``, already vetted) and what to ask for."""

    url: str
    scheme: str
    host: str  # lower case, no brackets
    port: int
    path: str  # path + query, as sent
    addresses: tuple[str, ...]

    @property
    def host_header(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return host if self.port == _default_port(self.scheme) else f"{host}:{self.port}"


@dataclass(frozen=True)
class FetchPolicy:
    allowed_hosts: tuple[str, ...] = ()
    own_roots: tuple[str, ...] = ()  # URL prefixes of this backend (always allowed, any address)
    max_bytes: int = DEFAULT_MAX_BYTES
    timeout: float = DEFAULT_TIMEOUT
    setting_hint: str = field(default="fetch_allowed_hosts", compare=False)

    @classmethod
    def from_settings(cls, settings: Any, api_root: str | None = None) -> FetchPolicy:
        return cls(allowed_hosts=tuple(getattr(settings, "fetch_allowed_hosts", None) or ()),
                   own_roots=own_roots(settings, api_root),
                   max_bytes=getattr(settings, "fetch_max_bytes", DEFAULT_MAX_BYTES),
                   timeout=getattr(settings, "fetch_timeout", DEFAULT_TIMEOUT))

    def is_own(self, url: str) -> bool:
        return any(_under_root(url, root) for root in self.own_roots)

    def host_rule(self, host: str) -> str | None:
        """"exact" (any address), "pattern" (public addresses only) or None (not allowed)."""
        key = str(ipaddress.ip_address(host)) if _is_ip(host) else host
        if key in self.allowed_hosts:
            return "exact"
        for pattern in self.allowed_hosts:
            if pattern == "*" or (pattern.startswith("*.") and key.endswith(pattern[1:])):
                return "pattern"
        return None


def own_roots(settings: Any, api_root: str | None) -> tuple[str, ...]:
    """This backend's own URL prefix, when it can be trusted.

    With ``public_url`` set, the API root derives from it. Without it, the API root comes from the
    request's Host header, which a client chooses: it then counts only when it is a loopback address
    (a development server), so a forged Host cannot turn an internal host into "our own"."""
    if not api_root:
        return ()
    root = api_root.rstrip("/")
    if getattr(settings, "public_url", None):
        return (root,)
    host = (urlsplit(root).hostname or "").lower()
    if host == "localhost" or (_is_ip(host) and ipaddress.ip_address(host).is_loopback):
        return (root,)
    return ()


def _under_root(url: str, root: str) -> bool:
    try:
        u, r = urlsplit(url), urlsplit(root)
        same_origin = (u.scheme.lower(), (u.hostname or "").lower(), u.port or _default_port(u.scheme)) == \
                      (r.scheme.lower(), (r.hostname or "").lower(), r.port or _default_port(r.scheme))
    except ValueError:
        return False
    if not same_origin or u.username or u.password:
        return False
    base = r.path.rstrip("/")
    return u.path == base or u.path.startswith(base + "/")


def configure(settings: Any) -> None:
    """Settings for fetches made without a RunContext (default: nothing remote allowed)."""
    global _default_settings
    with _default_lock:
        _default_settings = settings


def policy_for(run_context: Any = None) -> FetchPolicy:
    """The policy of a run: the backend's settings and its own API root."""
    services = getattr(run_context, "services", None)
    settings = getattr(services, "settings", None) or _default_settings
    return FetchPolicy.from_settings(settings, getattr(run_context, "api_root", None))


# --- fetching ------------------------------------------------------------------------------------


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
        if not isinstance(url, str) or not url.strip():
            raise self.refuse(f"{url!r} is not a URL; give an http:// or https:// URL")
        url = url.strip()
        try:
            parts = urlsplit(url)
            port = parts.port
        except ValueError as exc:
            raise self.refuse(f"{url!r} is not a valid URL ({exc})") from None
        scheme = parts.scheme.lower()
        if scheme not in SCHEMES:
            shown = f"'{scheme}://'" if scheme else "a local path"
            raise self.refuse(f"{url!r} uses {shown}; only http:// and https:// URLs can be read")
        host = (parts.hostname or "").lower().rstrip(".")
        if not host:
            raise self.refuse(f"{url!r} has no host name")
        if parts.username is not None or parts.password is not None:
            raise self.refuse(f"{url!r} contains credentials (user:password@); they are not sent")
        port = port or _default_port(scheme)
        path = urlunsplit(("", "", parts.path or "/", parts.query, ""))
        own = self.policy.is_own(url)
        rule = "exact" if own else self.policy.host_rule(host)
        if rule is None:
            raise self.refuse(self._not_allowed(host, url))
        addresses = self._resolve(host, port)
        if rule != "exact":
            private = [a for a in addresses if not _public(ipaddress.ip_address(a))]
            if private:
                raise self.refuse(
                    f"host '{host}' resolves to the non-public address {private[0]}; only hosts listed by "
                    f"their exact name in the setting fetch_allowed_hosts may be on a private network "
                    f"(ask the operator to add '{host}' itself, not a wildcard)")
        return Target(url, scheme, host, port, path, addresses)

    def _not_allowed(self, host: str, url: str) -> str:
        listed = ", ".join(self.policy.allowed_hosts) or "none"
        return (f"reading from host '{host}' is not allowed ({url}): this backend only reads URLs on its "
                f"allow-list (currently: {listed}). The operator can allow it with the setting "
                f"fetch_allowed_hosts, e.g. OPENEO_BACKEND_FETCH_ALLOWED_HOSTS='[\"{host}\"]' or "
                f"'[\"*.{host.split('.', 1)[-1]}\"]' in the environment, or fetch_allowed_hosts: "
                f"[{host}] in the config file")

    def _resolve(self, host: str, port: int) -> tuple[str, ...]:
        if _is_ip(host):
            return (str(ipaddress.ip_address(host)),)
        try:
            infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except (socket.gaierror, UnicodeError, OSError) as exc:
            raise self.refuse(f"host '{host}' cannot be resolved ({exc})") from None
        seen: dict[str, None] = {}
        for family, _, _, _, sockaddr in infos:
            if family in (socket.AF_INET, socket.AF_INET6):
                seen.setdefault(str(sockaddr[0]).split("%", 1)[0], None)
        if not seen:
            raise self.refuse(f"host '{host}' has no IP address")
        return tuple(seen)

    def check_href(self, href: str) -> str:
        """Check a URL found inside a fetched document (e.g. an asset); returns it unchanged."""
        self.check(href)
        return href

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
        common = dict(port=target.port, timeout=timeout, maxsize=1, retries=False)
        if target.scheme == "https":
            context = ssl.create_default_context(cafile=_ca_file())
            return urllib3.HTTPSConnectionPool(address, ssl_context=context, server_hostname=target.host,
                                               assert_hostname=target.host, cert_reqs="CERT_REQUIRED", **common)
        return urllib3.HTTPConnectionPool(address, **common)

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
    """JSON from a user-given URL under the run's policy (see the module doc for what is refused)."""
    return Fetcher(policy_for(run_context), process, parameter).fetch_json(url)


# --- pystac / pystac-client ----------------------------------------------------------------------

_STAC_IO_CLASSES: dict[str, type] = {}


def _stac_io_classes() -> dict[str, type]:
    """Defined on first use, so importing this module (e.g. from settings) does not import pystac."""
    if _STAC_IO_CLASSES:
        return _STAC_IO_CLASSES
    import pystac
    from pystac.stac_io import DefaultStacIO
    from pystac_client.stac_api_io import StacApiIO

    def href_of(source: Any) -> str:
        if isinstance(source, pystac.Link):
            return source.get_absolute_href() or source.href
        return str(source)

    class GuardedStacIO(DefaultStacIO):
        """pystac reads through a Fetcher: remote URLs under the policy, local files never."""

        def __init__(self, fetcher: Fetcher):
            super().__init__()
            self.fetcher = fetcher

        def read_text(self, source: Any, *args: Any, **kwargs: Any) -> str:
            return self.fetcher.fetch_text(href_of(source))

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

    _STAC_IO_CLASSES.update(GuardedStacIO=GuardedStacIO, GuardedStacApiIO=GuardedStacApiIO)
    return _STAC_IO_CLASSES


def __getattr__(name: str) -> Any:
    if name in ("GuardedStacIO", "GuardedStacApiIO"):
        return _stac_io_classes()[name]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
