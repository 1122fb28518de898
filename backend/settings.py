"""Typed settings, read once at start-up: defaults < config file < OPENEO_BACKEND_* environment < CLI flags."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, Field, field_validator, model_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from backend.accounting.pricing import DEFAULT_PLANS, Plan
from backend.demo.spec import DEMO_COLLECTIONS

ENV_PREFIX = "OPENEO_BACKEND_"
API_PREFIX = "/openeo/1.2"  # where the API is mounted


def default_data_dir() -> Path:
    base = os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share"
    return Path(base) / "openeo-backend"


# The grant types the openEO API allows in `default_clients` (client credentials is not one of them).
GrantType = Literal["implicit", "authorization_code", "authorization_code+pkce",
                    "urn:ietf:params:oauth:grant-type:device_code",
                    "urn:ietf:params:oauth:grant-type:device_code+pkce", "refresh_token"]


class OidcClient(BaseModel):
    id: str
    grant_types: list[GrantType] = ["authorization_code+pkce", "urn:ietf:params:oauth:grant-type:device_code+pkce",
                              "refresh_token"]
    redirect_urls: list[str] = []


ANY_AUDIENCE = "*"  # `audience` value that turns the audience check off (a conscious choice)


class OidcProvider(BaseModel):
    id: str = Field(pattern=r"^[\w-]+$")
    issuer: str
    title: str
    scopes: list[str] = ["openid"]
    description: str | None = None
    default_clients: list[OidcClient] = []
    audience: str | list[str] | None = Field(
        None, description="Accepted audiences of access tokens (one or a list): a token is accepted when its `aud` "
                          "holds one of them or its `azp` is one of them; unset = the ids of `default_clients`; "
                          f"'{ANY_AUDIENCE}' = any audience (not checked: choose it only for a provider that issues "
                          "tokens for this service alone)")

    @model_validator(mode="after")
    def _audience_is_checked(self) -> "OidcProvider":
        """A token issued for another service must not open this one: without an audience and without default
        clients there is nothing to check a token's audience against, so the operator must choose."""
        listed = [self.audience] if isinstance(self.audience, str) else list(self.audience or [])
        if ANY_AUDIENCE in listed and len(listed) > 1:
            raise ValueError(f"OIDC provider '{self.id}': audience '{ANY_AUDIENCE}' (any audience) cannot be "
                             "combined with other audiences: list the accepted ones, or '*' alone")
        if not listed and not self.default_clients:
            raise ValueError(
                f"OIDC provider '{self.id}': set `audience` to the audience (`aud`, or `azp`) of the access tokens "
                "it issues for this service, usually the client id (a string or a list), or list its "
                f"`default_clients`, whose ids are then accepted; `audience: '{ANY_AUDIENCE}'` accepts tokens "
                "issued for any client of the provider")
        if any(not entry.strip() for entry in listed):
            raise ValueError(f"OIDC provider '{self.id}': an empty audience matches nothing")
        return self

    @property
    def accepted_audiences(self) -> frozenset[str] | None:
        """The audiences a token must name (in `aud` or `azp`); None = any audience."""
        listed = [self.audience] if isinstance(self.audience, str) else list(self.audience or [])
        if listed == [ANY_AUDIENCE]:
            return None
        return frozenset(listed or (client.id for client in self.default_clients))


class StacSource(BaseModel):
    """A collection source: a static catalog (path or URL of catalog.json) or a STAC API root."""

    kind: Literal["static", "api"]
    url: str
    collections: list[str] | None = Field(None, description="Allow-list of STAC collection ids; unset = all")
    id_map: dict[str, str] = Field({}, description="openEO collection id -> STAC collection id")


class Settings(BaseSettings):
    """Every setting; environment variable = OPENEO_BACKEND_<NAME> (nested lists/dicts as JSON)."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="forbid", validate_default=True)

    data_dir: Path = Field(default_factory=default_data_dir, description="SQLite DB, demo catalog, secrets")
    host: str = Field("127.0.0.1", description="Address `serve` binds to")
    port: int = Field(8080, description="Port `serve` listens on")
    public_url: str | None = Field(None, description="Public root URL when behind a proxy; default: from requests")
    database_url: str | None = Field(None, description="SQLAlchemy URL; default sqlite:///<data_dir>/backend.db")
    secret_key: str | None = Field(None, description="Token signing key; default: generated in <data_dir>/secret.key")
    basic_token_ttl: int = Field(24 * 3600, gt=0, description="Lifetime of basic-auth access tokens, seconds")
    oidc_providers: list[OidcProvider] = Field([], description="OIDC providers (JSON list); none = no OIDC login")
    oidc_jwks_ttl: int = Field(3600, gt=0, description="Seconds to cache a provider's discovery document and JWKS")
    stac_sources: list[StacSource] = Field([], description="Collection sources (JSON list); empty = demo catalog")
    demo_catalog: bool = Field(True, description="Generate and serve the synthetic demo catalog")
    demo_collections: list[str] = Field(list(DEMO_COLLECTIONS), description="Demo collections to serve (JSON "
                                        f"list); default all: {', '.join(DEMO_COLLECTIONS)}")
    collection_cache_ttl: int = Field(300, ge=0, description="Seconds collection metadata stays cached")
    max_request_bytes: int = Field(10 * 1024 * 1024, gt=0, description="Largest accepted request body (413 above)")
    backend_id: str = Field("openeo-backend", description="Capabilities `id`")
    title: str = Field("openEO backend", description="Capabilities `title`")
    description: str = Field("openEO API 1.2 backend on STAC, xarray and Dask.", description="Capabilities text")
    log_level: str = Field("INFO", description="Python log level")
    sync_threads: int = Field(2, gt=0, description="Dask threads per synchronous request (POST /result)")
    sync_max_pixels: int = Field(400_000_000, gt=0, description="Largest cube (values) a POST /result may load")
    sync_timeout: float = Field(300, gt=0, description="Seconds a POST /result may compute")
    sync_max_concurrent: int = Field(2, gt=0, description="POST /result computations one worker process runs at "
                                                         "once (each on sync_threads threads); more wait")
    sync_queue_timeout: float = Field(60, ge=0, description="Seconds a POST /result over sync_max_concurrent waits "
                                                           "for a free slot; then 503 InfrastructureBusy")
    tile_timeout: float = Field(30, gt=0, description="Seconds one web service tile may compute")
    tile_cache_bytes: int = Field(64 * 2**20, ge=0, description="Bytes of rendered tiles each worker process "
                                                               "keeps (LRU); 0 turns the cache off")
    udf_memory_mb: int = Field(1024, gt=0, description="MiB one UDF chunk may allocate (its sandbox's address "
                                                      "space beyond the Python runtime); more → UdfFailed")
    udf_cpu_seconds: float = Field(60, gt=0, description="CPU seconds one UDF chunk may use; more → UdfFailed")
    udf_spool_mb: int = Field(2048, gt=0, description="MiB of memory-backed space a UDF fork server (one per "
                                                     "server process) has for the chunks it exchanges and files "
                                                     "UDFs write")
    udf_timeout: float = Field(120, gt=0, description="Wall-clock seconds one UDF chunk may run; then it is killed "
                                                     "(UdfFailed)")
    access_log: bool = Field(True, description="gunicorn access log (~15 % of a cached request's CPU)")
    workers: int = Field(2, gt=0, description="gunicorn worker processes for `serve`")
    threads: int = Field(4, gt=0, description="Threads per gunicorn worker")
    fetch_allowed_hosts: list[str] = Field(
        [], description="Hosts whose URLs processes may read (load_stac, GeoJSON URLs; JSON list): exact names or "
                        "IPs (private addresses allowed), '*.example.org' (subdomains), '*' (any host); wildcards "
                        "reach public addresses only; empty = only this backend's own URLs")
    fetch_max_bytes: int = Field(32 * 1024 * 1024, gt=0, description="Largest document a process may fetch by URL")
    fetch_timeout: float = Field(30, gt=0, description="Seconds to connect to, and to read, a fetched URL")
    plans: list[Plan] = Field(DEFAULT_PLANS, min_length=1, description="Billing plans (JSON list of {name, description, "
                              "paid, url, fixed_fee, per_cpu_second, per_gb_second, per_megapixel}); the first is the default")
    free_credits: float = Field(1000, ge=0, description="Credits every new user receives once")
    monthly_free_credits: float = Field(0, ge=0, description="Credits granted to every user on the first request "
                                                            "of each month (0 = no monthly top-up)")
    hold_safety_factor: float = Field(1.5, ge=1, description="A job start holds estimate × this (capped by budget "
                                                            "and balance)")
    sync_hold: float = Field(50, gt=0, description="Credits held during a synchronous request (capped by budget "
                                                   "and balance); its actual costs are charged")

    dask_scheduler: str | None = Field(None, description="Address of an existing Dask scheduler for batch jobs "
                                                         "(tcp://host:8786); unset = a LocalCluster per runner")
    dask_workers: int = Field(2, gt=0, description="LocalCluster: worker processes")
    dask_threads_per_worker: int = Field(1, gt=0, description="LocalCluster: threads per worker process")
    dask_memory_limit: str = Field("2GiB", description="LocalCluster: memory limit per worker (e.g. 2GiB)")
    job_runner: bool = Field(True, description="`serve` also starts a job runner (else run `openeo-backend worker`)")
    job_slots: int = Field(2, gt=0, description="Batch jobs one runner executes at the same time")
    job_max_running_per_user: int = Field(2, gt=0, description="Running batch jobs per user (more wait queued)")
    job_time_limit: float = Field(6 * 3600, gt=0, description="Seconds a batch job may run before it is stopped")
    job_lease_seconds: float = Field(30, gt=0, description="A runner silent this long loses its jobs (re-queued)")
    job_max_attempts: int = Field(2, gt=0, description="Runs of a job whose runner died before it is failed")
    job_poll_interval: float = Field(1.0, gt=0, description="Seconds between a runner's looks at the queue")
    job_seconds_per_megapixel: float = Field(0.02, gt=0, description="Batch throughput used by GET /jobs/{id}/estimate "
                                                                    "(seconds per input megapixel)")
    results_dir: Path | None = Field(None, description="Where job results are stored (with results_url: where runs "
                                                       "are written before upload); default <data_dir>/jobs")
    results_url: str | None = Field(None, description="Store job results at this fsspec URL instead "
                                                      "(s3://bucket/prefix; needs the `s3` extra); unset = results_dir")
    results_storage_options: dict[str, Any] = Field(
        {}, description="fsspec options for results_url (JSON), e.g. {\"endpoint_url\": \"http://minio:9000\", "
                        "\"key\": \"...\", \"secret\": \"...\"}; unset = the AWS_* environment")
    files_dir: Path | None = Field(None, description="Users' uploaded files (/files), one folder per user; "
                                                     "default <data_dir>/files")
    files_url: str | None = Field(None, description="Store uploaded files at this fsspec URL instead (s3://bucket/"
                                                    "prefix; needs the `s3` extra); files_dir then stages uploads")
    files_storage_options: dict[str, Any] = Field({}, description="fsspec options for files_url (JSON), as "
                                                                  "results_storage_options")
    files_quota_bytes: int = Field(1024 ** 3, gt=0, description="Bytes of uploaded files each user may keep "
                                                                "(400 StorageQuotaExceeded above)")
    result_url_ttl: int = Field(7 * 24 * 3600, gt=0, description="Lifetime of signed result download URLs, seconds")

    @field_validator("fetch_allowed_hosts")
    @classmethod
    def _host_patterns(cls, value: list[str]) -> list[str]:
        if not value:  # the usual case: the CLI's user and credit commands then import nothing of processing
            return value
        from backend.processing.fetching import normalize_host_pattern

        return [normalize_host_pattern(entry) for entry in value]

    @field_validator("demo_collections")
    @classmethod
    def _known_demo_collections(cls, value: list[str]) -> list[str]:
        known = ", ".join(DEMO_COLLECTIONS)
        unknown = [name for name in value if name not in DEMO_COLLECTIONS]
        if unknown:
            raise ValueError(f"unknown demo collection(s) {', '.join(map(repr, unknown))}; the demo catalog has {known}")
        if not value:
            raise ValueError(f"no demo collection chosen: list some of {known}, or set demo_catalog to false")
        return list(dict.fromkeys(value))

    @field_validator("data_dir")
    @classmethod
    def _absolute(cls, value: Path) -> Path:
        return value.expanduser().resolve()

    @property
    def resolved_results_dir(self) -> Path:
        return (self.results_dir or self.data_dir / "jobs").expanduser().resolve()

    @property
    def resolved_files_dir(self) -> Path:
        return (self.files_dir or self.data_dir / "files").expanduser().resolve()

    @property
    def resolved_database_url(self) -> str:
        return self.database_url or f"sqlite:///{self.data_dir / 'backend.db'}"

    @classmethod
    def settings_customise_sources(cls, settings_cls, init_settings, env_settings, dotenv_settings,
                                   file_secret_settings) -> tuple[PydanticBaseSettingsSource, ...]:
        return init_settings, env_settings, _ConfigFileSource(settings_cls)


class _ConfigFileSource(PydanticBaseSettingsSource):
    """Optional YAML (or JSON) config file named by OPENEO_BACKEND_CONFIG or `--config`."""

    path: Path | None = None

    def get_field_value(self, field, field_name):  # pragma: no cover - required by the ABC, unused
        return None, field_name, False

    def __call__(self) -> dict[str, Any]:
        path = _ConfigFileSource.path or os.environ.get(ENV_PREFIX + "CONFIG")
        if not path:
            return {}
        content = yaml.safe_load(Path(path).read_text()) or {}
        if not isinstance(content, dict):
            raise ValueError(f"config file {path} must hold a mapping of setting names to values")
        return content


def load_settings(config_file: Path | str | None = None, **overrides: Any) -> Settings:
    """Settings from all sources; ``overrides`` (CLI flags) win, None values are ignored."""
    _ConfigFileSource.path = Path(config_file) if config_file else None
    try:
        return Settings(**{k: v for k, v in overrides.items() if v is not None})
    finally:
        _ConfigFileSource.path = None


def settings_help() -> str:
    """A table of every setting for `openeo-backend --help`."""
    lines = []
    for name, field in Settings.model_fields.items():
        lines.append(f"  {ENV_PREFIX}{name.upper():<28} {field.description or ''}")
    return "\n".join(lines)
