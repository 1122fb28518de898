"""The aggregator's implementation of the shared views' service interfaces (apicore/services.py), built
on its parts (aggregator/parts.py): fan-out, merge, route and proxy.

    discovery.py   capabilities (billing, federation conformance, `federation`), /health
    account.py     logins (aggregator/auth), /me with the federation's balance
    metadata.py    collections, processes, file formats, UDF runtimes: fanned out, cached, merged
    udps.py        user-defined processes in the aggregator's database
    processing.py  POST /result and POST /validation: routed, proxied (proxy.py: streamed), charged once
    dispatch.py    routing a graph to a backend for a user (credentials, UDPs, headers): /result and jobs
    jobs.py        batch jobs on the backends (job_listing.py: GET /jobs merged), charged once per run

``build_services(parts, jobs=...)`` takes another jobs service (tests; ``UnsupportedJobs`` answers 501).
"""

from __future__ import annotations

from apicore.services import JobsService, OpenEOServices
from aggregator.parts import AggregatorParts
from aggregator.services.account import FederationAccount
from aggregator.services.discovery import FederationDiscovery
from aggregator.services.jobs import FederationJobs
from aggregator.services.metadata import FederationCollections, FederationProcesses
from aggregator.services.processing import FederationProcessing
from aggregator.services.udps import FederationUdps

API_PREFIX = "/openeo/1.2"


def build_services(parts: AggregatorParts, jobs: JobsService | None = None) -> OpenEOServices:
    """Every service over ``parts``; ``jobs``: the batch jobs service (default: ``FederationJobs``)."""
    return OpenEOServices(
        discovery=FederationDiscovery(parts), account=FederationAccount(parts),
        collections=FederationCollections(parts), processes=FederationProcesses(parts), udps=FederationUdps(parts),
        processing=FederationProcessing(parts),
        jobs=jobs if jobs is not None else FederationJobs(parts),
        api_prefix=API_PREFIX, public_url=parts.settings.public_url)
