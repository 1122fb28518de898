"""Typed aggregator settings, read once at start-up: defaults < config file < OPENEO_AGGREGATOR_* env < flags.

The rules are the backend's (backend/settings.py): a YAML (or JSON) file named by ``--config`` or
OPENEO_AGGREGATOR_CONFIG, lists and objects in the environment as JSON, unknown names refused.
Types shared with the backend (OIDC providers, billing plans) are imported from its light modules.
"""

from __future__ import annotations

import os
from contextvars import ContextVar
from pathlib import Path
from typing import Any, Iterable

import yaml
from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from aggregator.federation.backends import BackendConfig, check_unique_ids
from aggregator.federation.upstream import Timeouts
from backend.accounting.pricing import DEFAULT_PLANS, Plan
from backend.settings import OidcProvider

ENV_PREFIX = "OPENEO_AGGREGATOR_"
MIN_BACKENDS = 2  # the federation extension: `federation` has minProperties 2


def default_data_dir() -> Path:
    base = os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share"
    return Path(base) / "openeo-aggregator"


class AggregatorSettings(BaseSettings):
    """Every setting; environment variable = OPENEO_AGGREGATOR_<NAME> (lists/objects as JSON)."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="forbid", validate_default=True)

    data_dir: Path = Field(default_factory=default_data_dir, description="SQLite DB and secrets")
    host: str = Field("127.0.0.1", description="Address `serve` binds to")
    port: int = Field(8090, description="Port `serve` listens on")
    public_url: str | None = Field(None, description="Public root URL when behind a proxy; default: from requests")
    database_url: str | None = Field(None, description="SQLAlchemy URL; default sqlite:///<data_dir>/aggregator.db")
    secret_key: str | None = Field(None, description="Token/job-id signing key; default: generated in <data_dir>")
    federation_id: str = Field("openeo-federation", description="Capabilities `id`")
    title: str = Field("openEO federation", description="Capabilities `title`")
    description: str = Field("One openEO API over several backends.", description="Capabilities text")
    log_level: str = Field("INFO", description="Python log level")
    workers: int = Field(2, gt=0, description="gunicorn worker processes for `serve`")
    threads: int = Field(8, gt=0, description="Threads per gunicorn worker (requests mostly wait on backends)")
    access_log: bool = Field(True, description="gunicorn access log of `serve`")
    max_request_bytes: int = Field(10 * 1024 * 1024, gt=0, description="Largest request body; larger: 413 "
                                                                        "PayloadTooLarge")
    basic_token_ttl: int = Field(86400, gt=0, description="Lifetime of basic-auth access tokens (s), shortened "
                                                          "to the earliest expiry of the backends' tokens")

    backends: list[BackendConfig] = Field(
        [], description="The federated backends (JSON list of {id, url, title, description, experimental, "
                        "deprecated, weight, collections: {allow, deny}, processes: {deny}}); at least 2 to serve")
    oidc_providers: list[OidcProvider] = Field([], description="OIDC providers (JSON list), as the backend's")
    plans: list[Plan] = Field(DEFAULT_PLANS, min_length=1, description="Billing plans (JSON list), as the "
                              "backend's; the first is the default")
    free_credits: float = Field(1000, ge=0, description="Credits every new user receives once")
    admins: list[str] = Field([], description="Users (names or user ids) allowed to use the admin API "
                                              "(/federation/backends, /federation/usage)")
    registry_poll_interval: float = Field(2.0, gt=0, description="Seconds between reads of the backend "
                                          "registrations (changes by other workers or the CLI show this fast)")

    connect_timeout: float = Field(1.0, gt=0, description="Seconds to connect to a backend")
    metadata_timeout: float = Field(5.0, gt=0, description="Read timeout of metadata calls (capabilities, "
                                                           "collections, processes, ...), seconds")
    jobs_timeout: float = Field(30.0, gt=0, description="Read timeout of batch job calls, seconds")
    result_timeout: float = Field(900.0, gt=0, description="Read timeout of synchronous processing "
                                                           "(POST /result), seconds")
    fanout_deadline: float = Field(2.5, gt=0, description="Seconds a merged answer waits for its slowest "
                                                          "backend; later ones land in federation:missing")
    jobs_listing_deadline: float = Field(2.5, gt=0, description="Seconds GET /jobs waits for its slowest backend; "
                                                                "later ones land in federation:missing")
    fanout_workers: int = Field(32, gt=0, description="Threads (per worker process) calling backends in parallel")
    upstream_pool_size: int = Field(16, gt=0, description="Kept-alive connections per backend; also the most "
                                                          "calls one backend may have pending in fan-outs")

    health_interval: float = Field(10.0, gt=0, description="Seconds between health probes of a backend")
    health_timeout: float = Field(3.0, gt=0, description="Seconds a health probe (GET of the backend's url) "
                                                         "may take")
    health_recheck: float = Field(2.0, gt=0, description="Seconds to the next probe after a failure")
    health_history: int = Field(60, gt=0, description="Probe results kept per backend")
    circuit_failure_threshold: int = Field(2, gt=0, description="Consecutive failures (probes or requests) "
                                           "after which a backend is offline and skipped until a probe succeeds")
    metadata_cache_ttl: float = Field(60.0, ge=0, description="Seconds backend metadata is fresh; after that it "
                                                              "is served stale while refreshed in the background")
    metadata_cache_max_stale: float = Field(600.0, ge=0, description="Seconds past the ttl a stale value may "
                                                                     "still be served while refreshes fail")

    @field_validator("backends")
    @classmethod
    def _unique_backend_ids(cls, value: list[BackendConfig]) -> list[BackendConfig]:
        check_unique_ids(value)
        return value

    @field_validator("data_dir")
    @classmethod
    def _absolute(cls, value: Path) -> Path:
        return value.expanduser().resolve()

    @property
    def resolved_database_url(self) -> str:
        return self.database_url or f"sqlite:///{self.data_dir / 'aggregator.db'}"

    @property
    def timeouts(self) -> Timeouts:
        return Timeouts(connect=self.connect_timeout, metadata=self.metadata_timeout, jobs=self.jobs_timeout,
                        result=self.result_timeout)

    @classmethod
    def settings_customise_sources(cls, settings_cls, init_settings, env_settings, dotenv_settings,
                                   file_secret_settings) -> tuple[PydanticBaseSettingsSource, ...]:
        return init_settings, env_settings, _ConfigFileSource(settings_cls)


_config_file: ContextVar[Path | None] = ContextVar("aggregator_config_file", default=None)


class _ConfigFileSource(PydanticBaseSettingsSource):
    """Optional YAML (or JSON) config file: ``load_settings(config_file)`` or OPENEO_AGGREGATOR_CONFIG."""

    def get_field_value(self, field, field_name):  # pragma: no cover - required by the ABC, unused
        return None, field_name, False

    def __call__(self) -> dict[str, Any]:
        path = _config_file.get() or os.environ.get(ENV_PREFIX + "CONFIG")
        if not path:
            return {}
        content = yaml.safe_load(Path(path).read_text()) or {}
        if not isinstance(content, dict):
            raise ValueError(f"config file {path} must hold a mapping of setting names to values")
        return content


def load_settings(config_file: Path | str | None = None, **overrides: Any) -> AggregatorSettings:
    """Settings from all sources; ``overrides`` (CLI flags) win, None values are ignored."""
    token = _config_file.set(Path(config_file) if config_file else None)
    try:
        return AggregatorSettings(**{k: v for k, v in overrides.items() if v is not None})
    finally:
        _config_file.reset(token)


class FederationConfigError(ValueError):
    """The configuration cannot make a federation (the app refuses to start)."""


def require_federation(settings: AggregatorSettings, registered: Iterable[BackendConfig] = ()) -> None:
    """Refuse to start without at least two backends (configured plus ``registered`` at runtime before)."""
    backends = [*settings.backends, *registered]
    ids = sorted({backend.id for backend in backends})
    if len(ids) < MIN_BACKENDS:
        listed = ", ".join(ids) if ids else "none"
        raise FederationConfigError(
            f"A federation needs at least {MIN_BACKENDS} backends; configured: {listed}. List them under "
            f"`backends:` in the config file (id and url of each backend's versioned API root, e.g. "
            f"http://127.0.0.1:8081/openeo/1.2/) or in {ENV_PREFIX}BACKENDS as JSON.")


def settings_help() -> str:
    """A table of every setting for `openeo-aggregator --help`."""
    lines = []
    for name, field in AggregatorSettings.model_fields.items():
        lines.append(f"  {ENV_PREFIX}{name.upper():<34} {field.description or ''}")
    return "\n".join(lines)
