"""URL arguments the fetch policy would refuse, found without fetching anything.

The check is the fetcher's own first step, ``FetchPolicy.check_url`` (http(s) only, no credentials,
host on ``fetch_allowed_hosts`` or this backend's own API root), so validation and execution cannot
disagree on which hosts are allowed.

DNS is deliberately not resolved here (so a host allowed by a wildcard that resolves to a private
address is refused only when the process runs): ``getaddrinfo`` has no timeout of its own, so a slow
or dead resolver would hold the validation request for as long as the system resolver retries, and
an answer now proves nothing about the run (DNS can change in between; the fetcher resolves and
checks again anyway).
"""

from __future__ import annotations

from typing import Any

from apicore import errors
from backend.processing.fetching import FetchPolicy, Refused

# process id -> the parameter whose string value is a URL the process reads
URL_ARGUMENTS = {"load_stac": "url", "load_url": "url", "aggregate_spatial": "geometries"}
# Parameters whose schema takes no string at all: their type error ("not an object") would not say
# that the host is refused, so a URL there is checked even when the schema check already failed.
# (aggregate_spatial itself refuses every URL string today, allowed host or not; see geometry_input.)
NO_STRING_SCHEMA = {("aggregate_spatial", "geometries")}


def check_urls(process_id: str, arguments: dict, already_invalid: set[str],
               policy: FetchPolicy | None) -> list[errors.OpenEOError]:
    """The policy's refusal of the process's URL argument, if any; [] without a policy (e.g. a federation
    front) or when the value is not a literal string (a reference, inline GeoJSON)."""
    name = URL_ARGUMENTS.get(process_id)
    if policy is None or name is None:
        return []
    value: Any = arguments.get(name)
    if not isinstance(value, str):
        return []
    if (process_id, name) in NO_STRING_SCHEMA:
        if "://" not in value:  # not a URL, just a wrong type: the schema check said so
            return []
    elif name in already_invalid:  # the schema check already refused it (e.g. not http(s)://)
        return []
    try:
        policy.check_url(value)
    except Refused as exc:
        return [errors.ProcessParameterInvalid(process=process_id, parameter=name, reason=str(exc))]
    return []
