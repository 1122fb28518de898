"""The backend's implementation of the shared views' service interfaces (apicore/services.py), built on
its parts (backend/services.py: stores, engine, runner queue, ledger)."""

from __future__ import annotations

from apicore.services import OpenEOServices
from backend.api_services.account import BackendAccount
from backend.api_services.discovery import BackendDiscovery
from backend.api_services.files import BackendFiles
from backend.api_services.jobs import BackendJobs
from backend.api_services.metadata import BackendCollections, BackendProcesses
from backend.api_services.processing import BackendProcessing
from backend.api_services.udps import BackendUdps
from backend.services import Services
from backend.settings import API_PREFIX


def build_api_services(parts: Services) -> OpenEOServices:
    return OpenEOServices(
        discovery=BackendDiscovery(parts), account=BackendAccount(parts), collections=BackendCollections(parts),
        processes=BackendProcesses(parts), udps=BackendUdps(parts), processing=BackendProcessing(parts),
        jobs=BackendJobs(parts), files=BackendFiles(parts.files), api_prefix=API_PREFIX, public_url=parts.settings.public_url)
