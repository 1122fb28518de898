"""The backend's parts, built once from the settings and shared by all requests."""

from __future__ import annotations

import logging
import os
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from backend.settings import Settings
from backend.storage.db import Database
from backend.storage.schema import open_database

if TYPE_CHECKING:  # the parts are imported where they are built: importing this module loads no engine
    from backend.accounting.ledger import Ledger
    from backend.auth.authenticate import Authenticator
    from backend.catalog.registry import CollectionRegistry
    from backend.files.workspace import LocalWorkspaces
    from backend.jobs.logs import JobLogs, ServiceLogs
    from backend.jobs.signing import UrlSigner
    from backend.jobs.storage import ResultStorage
    from backend.jobs.store import JobStore
    from backend.processing.engine.implementations import Implementations
    from backend.processing.process_registry import ProcessRegistry
    from backend.processing.sync_slots import SyncSlots
    from backend.storage.udps import UdpStore
    from backend.storage.users import UserStore
    from backend.storage.web_services import WebServiceStore
    from backend.web_services.cache import TileCache

log = logging.getLogger(__name__)


@dataclass
class Services:
    settings: Settings
    db: Database
    users: UserStore
    udps: UdpStore
    authenticator: Authenticator
    collections: CollectionRegistry
    processes: ProcessRegistry
    implementations: Implementations
    jobs: JobStore
    job_logs: JobLogs
    result_urls: UrlSigner
    ledger: Ledger
    results: ResultStorage
    sync_slots: SyncSlots  # this process's synchronous computations (POST /result, warm-up)
    files: LocalWorkspaces  # users' uploaded files (/files, load_uploaded_files); FsspecWorkspaces is one too
    web_services: WebServiceStore  # secondary web services (/services)
    tiles: TileCache  # this process's rendered tiles of web services
    service_logs: ServiceLogs  # web services' log entries (tiles that failed)


def build_services(settings: Settings, migrate: bool = True) -> Services:
    """Every part; `migrate=False`: a process that must find the schema current (see storage/schema.py)."""
    from backend.accounting.ledger import Ledger
    from backend.auth.authenticate import Authenticator
    from backend.auth.basic_tokens import BasicTokenSigner
    from backend.files import open_workspaces
    from backend.auth.oidc import OidcValidator
    from backend.jobs.logs import JobLogs, ServiceLogs
    from backend.jobs.signing import UrlSigner
    from backend.jobs.storage import open_result_storage
    from backend.jobs.store import JobStore
    from backend.processing.process_registry import ProcessRegistry
    from backend.processing.processes import build_implementations
    from backend.processing.sync_slots import SyncSlots
    from backend.storage.udps import UdpStore
    from backend.storage.users import UserStore
    from backend.storage.web_services import WebServiceStore
    from backend.web_services.cache import TileCache

    db = open_database(settings, migrate=migrate)
    users = UserStore(db)
    key = secret_key(settings)
    signer = BasicTokenSigner(key, settings.basic_token_ttl)
    authenticator = Authenticator(users, signer, OidcValidator(settings.oidc_providers, settings.oidc_jwks_ttl))
    processes = ProcessRegistry()
    return Services(
        ledger=Ledger(db, settings.free_credits, settings.monthly_free_credits),
        jobs=JobStore(db), job_logs=JobLogs(db), result_urls=UrlSigner(key, settings.result_url_ttl),
        results=open_result_storage(settings),
        files=open_workspaces(settings),
        settings=settings, db=db, users=users, udps=UdpStore(db), authenticator=authenticator,
        collections=build_collection_registry(settings), processes=processes,
        implementations=build_implementations(processes),
        web_services=WebServiceStore(db), tiles=TileCache(settings.tile_cache_bytes), service_logs=ServiceLogs(db),
        sync_slots=SyncSlots(settings.sync_max_concurrent, settings.sync_threads, settings.sync_queue_timeout))


def build_collection_registry(settings: Settings) -> CollectionRegistry:
    from apicore.cache import TtlMemoryCache
    from backend.catalog.registry import CollectionRegistry
    from backend.catalog.sources import StaticCatalogSource, open_source

    sources = [(open_source(config), config.id_map) for config in settings.stac_sources]
    if settings.demo_catalog:
        from backend.demo import ensure_demo_catalog

        catalog_json = ensure_demo_catalog(settings.data_dir / "demo-catalog")
        sources.append((StaticCatalogSource(str(catalog_json), settings.demo_collections), {}))
    return CollectionRegistry(sources, TtlMemoryCache(settings.collection_cache_ttl))


def secret_key(settings: Settings) -> str:
    """The configured key, else one generated once per data dir (0600), shared by all worker processes."""
    if settings.secret_key:
        return settings.secret_key
    path = Path(settings.data_dir) / "secret.key"
    if not path.exists():
        # Write a private temp file, then link it into place: atomic, and the first process wins.
        temp = path.with_name(f".secret.key.{os.getpid()}.{secrets.token_hex(4)}")
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(secrets.token_urlsafe(48))
        try:
            os.link(temp, path)
        except FileExistsError:
            pass
        finally:
            temp.unlink()
    return path.read_text().strip()
