"""The one place where the server fetches a URL a user gave it (load_stac, GeoJSON geometries by URL).

Fetching user-given URLs from inside the backend is server-side request forgery waiting to happen
(cloud metadata endpoints, databases and admin pages on the internal network, local files), so
every such read goes through a ``FetchPolicy`` (``policy``):

* schemes ``http`` and ``https`` only (no ``file://``, ``s3://``, GDAL ``/vsi...`` paths, local
  paths), no credentials in the URL;
* the host must be on the ``fetch_allowed_hosts`` setting: an exact name or IP address, ``*.suffix``
  (any subdomain of ``suffix``) or ``*`` (any host). This backend's own API root is always allowed;
* the host is resolved and EVERY address must be public (no loopback, private, link-local, CGNAT,
  multicast, reserved ...), unless the host is on the list by its exact name (an operator's
  explicit choice). The connection then goes to the checked address (``transport``: the name is
  not resolved a second time, so DNS rebinding cannot swap in another address), with TLS still
  verified against the host name;
* redirects are followed (at most ``MAX_REDIRECTS``) only to the same host, each one checked again;
* a response larger than ``fetch_max_bytes`` (after decompression) is refused, and so is a
  connection or read slower than ``fetch_timeout``; environment proxies and ~/.netrc are not used.

A refused URL raises ``ProcessParameterInvalid`` naming the host and the setting that allows it.

The pixels of load_stac's assets obey the same rules: GDAL does not read them with its own HTTP client
(which resolves names again and follows any redirect) but through ``ranges`` (byte ranges from the
addresses ``Fetcher.check_href`` checked; backend/processing/loading/guarded_reads.py).

    fetch_json(url, run_context, process="aggregate_spatial", parameter="geometries")
    Fetcher(policy_for(run_context), "load_stac", "url").fetch_json(url)
    policy_for(run_context).check_url(url)       # the checks that need no network (raises Refused)
    GuardedStacIO(fetcher) / GuardedStacApiIO(fetcher)   # pystac / pystac-client reads (``stac_io``)
"""

from __future__ import annotations

from typing import Any

from backend.processing.fetching.policy import (DEFAULT_MAX_BYTES, DEFAULT_TIMEOUT, SCHEMES, FetchPolicy, Refused,
                                                Target, check_addresses, configure, normalize_host_pattern,
                                                own_roots, policy_for, resolve)
from backend.processing.fetching.transport import CHUNK, MAX_REDIRECTS, USER_AGENT, Fetcher, fetch_json

__all__ = ["CHUNK", "DEFAULT_MAX_BYTES", "DEFAULT_TIMEOUT", "MAX_REDIRECTS", "SCHEMES", "USER_AGENT",
           "FetchPolicy", "Fetcher", "GuardedStacApiIO", "GuardedStacIO", "Refused", "Target",
           "check_addresses", "configure", "fetch_json", "normalize_host_pattern", "own_roots", "policy_for",
           "resolve"]


def __getattr__(name: str) -> Any:
    # imported on first use, so importing this package (e.g. from settings) does not import pystac
    if name in ("GuardedStacIO", "GuardedStacApiIO"):
        from backend.processing.fetching import stac_io
        return getattr(stac_io, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
