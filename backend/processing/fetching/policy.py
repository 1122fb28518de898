"""Which user-given URLs the server may read: the allow-list, this backend's own root, address checks.

Everything here is decided without network traffic except ``resolve`` (DNS), so the same checks
serve the fetcher (``check_url`` → ``resolve`` → ``check_addresses``) and a dry run that must not
touch the network (``check_url`` alone).
"""

from __future__ import annotations

import ipaddress
import socket
import threading
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit, urlunsplit

DEFAULT_MAX_BYTES = 32 * 1024 * 1024
DEFAULT_TIMEOUT = 30.0
SCHEMES = ("http", "https")

_default_lock = threading.Lock()
_default_settings: Any = None


class Refused(Exception):
    """A URL the policy does not allow; the message says why (callers wrap it in their openEO error)."""


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
    addresses: tuple[str, ...] = ()
    rule: str = "exact"  # "exact": any address may be used; "pattern": public addresses only

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

    def check_url(self, url: Any) -> Target:
        """The URL checked without any network traffic (scheme, host, allow-list); raises Refused.

        The result has no addresses yet: ``resolve`` and ``check_addresses`` finish the check."""
        if not isinstance(url, str) or not url.strip():
            raise Refused(f"{url!r} is not a URL; give an http:// or https:// URL")
        url = url.strip()
        try:
            parts = urlsplit(url)
            port = parts.port
        except ValueError as exc:
            raise Refused(f"{url!r} is not a valid URL ({exc})") from None
        scheme = parts.scheme.lower()
        if scheme not in SCHEMES:
            shown = f"'{scheme}://'" if scheme else "a local path"
            raise Refused(f"{url!r} uses {shown}; only http:// and https:// URLs can be read")
        host = (parts.hostname or "").lower().rstrip(".")
        if not host:
            raise Refused(f"{url!r} has no host name")
        if parts.username is not None or parts.password is not None:
            raise Refused(f"{url!r} contains credentials (user:password@); they are not sent")
        port = port or _default_port(scheme)
        path = urlunsplit(("", "", parts.path or "/", parts.query, ""))
        rule = "exact" if self.is_own(url) else self.host_rule(host)
        if rule is None:
            raise Refused(self.not_allowed_message(host, url))
        return Target(url, scheme, host, port, path, rule=rule)

    def not_allowed_message(self, host: str, url: str) -> str:
        listed = ", ".join(self.allowed_hosts) or "none"
        return (f"reading from host '{host}' is not allowed ({url}): this backend only reads URLs on its "
                f"allow-list (currently: {listed}). The operator can allow it with the setting "
                f"fetch_allowed_hosts, e.g. OPENEO_BACKEND_FETCH_ALLOWED_HOSTS='[\"{host}\"]' or "
                f"'[\"*.{host.split('.', 1)[-1]}\"]' in the environment, or fetch_allowed_hosts: "
                f"[{host}] in the config file")


def resolve(host: str, port: int) -> tuple[str, ...]:
    """The host's IP addresses (DNS for a name); raises Refused when there are none."""
    if _is_ip(host):
        return (str(ipaddress.ip_address(host)),)
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError, OSError) as exc:
        raise Refused(f"host '{host}' cannot be resolved ({exc})") from None
    seen: dict[str, None] = {}
    for family, _, _, _, sockaddr in infos:
        if family in (socket.AF_INET, socket.AF_INET6):
            seen.setdefault(str(sockaddr[0]).split("%", 1)[0], None)
    if not seen:
        raise Refused(f"host '{host}' has no IP address")
    return tuple(seen)


def check_addresses(target: Target, addresses: tuple[str, ...]) -> Target:
    """``target`` with its addresses, once they pass its rule (wildcard matches: public ones only)."""
    if target.rule != "exact":
        private = [a for a in addresses if not _public(ipaddress.ip_address(a))]
        if private:
            host = target.host
            raise Refused(
                f"host '{host}' resolves to the non-public address {private[0]}; only hosts listed by "
                f"their exact name in the setting fetch_allowed_hosts may be on a private network "
                f"(ask the operator to add '{host}' itself, not a wildcard)")
    return Target(target.url, target.scheme, target.host, target.port, target.path, addresses, target.rule)


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
