"""What a validation needs to know: the predefined specs, the caller's UDPs, the collections."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Protocol

from backend.processing.fetching import FetchPolicy, policy_for


class CollectionLookup(Protocol):
    """The part of backend.catalog.registry.CollectionRegistry the dry run uses."""

    def ref(self, openeo_id: str) -> Any: ...  # raises CollectionNotFound

    def describe(self, openeo_id: str, api_root: str) -> dict: ...


def _no_udps(process_id: str) -> dict | None:
    return None


@dataclass
class ValidationContext:
    """``predefined(process_id)`` → spec or None; ``udp_lookup(process_id)`` → stored UDP or None.

    ``authenticated`` only changes messages (anonymous callers have no UDPs). ``collections=None``
    skips the load_collection dry run (e.g. a federation front that has no catalog of its own);
    ``output_formats=False`` skips the save_result format/options check. ``fetch_policy`` checks the URL
    arguments of load_stac, load_url and aggregate_spatial (see url_checks.py); None skips that.
    """

    predefined: Callable[[str], dict | None]
    udp_lookup: Callable[[str], dict | None] = _no_udps
    collections: CollectionLookup | None = None
    api_root: str = ""
    authenticated: bool = False
    output_formats: bool = True
    fetch_policy: FetchPolicy | None = None
    run_context: Any = None  # for processes from a URL namespace (namespaces.py); None: not resolved

    @classmethod
    def from_run_context(cls, context: Any) -> ValidationContext:
        """From the executor's RunContext (``services``, ``api_root``, ``udp_lookup``, ``user_id``); without
        a user no UDP is looked up."""
        services = context.services
        implementations = services.implementations

        def predefined(process_id: str) -> dict | None:
            return implementations.spec(process_id) if process_id in implementations else None

        authenticated = context.user_id is not None
        return cls(predefined=predefined, udp_lookup=context.udp_lookup if authenticated else _no_udps,
                   collections=services.collections, api_root=context.api_root, authenticated=authenticated,
                   fetch_policy=policy_for(context), run_context=context)


def as_validation_context(context: Any) -> ValidationContext:
    return context if isinstance(context, ValidationContext) else ValidationContext.from_run_context(context)
