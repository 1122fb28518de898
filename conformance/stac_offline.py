"""pytest plugin: let stac-validator use local copies of the STAC JSON schemas (no network).

The openEO test suite (WP2) validates collections with ``stac_validator.StacValidate``
(stac-validator 3.4).  That class fetches JSON schemas from the internet in two places:

1. the top-level schema (``https://schemas.stacspec.org/v1.0.0/collection-spec/...``)
   through ``fetch_and_parse_schema``, which ``stac_validator.validate`` imported from
   ``stac_validator.utilities`` (``requests.get``);
2. every ``$ref`` to another file (``../../item-spec/json-schema/item.json``,
   ``https://geojson.org/schema/Feature.json``) inside ``jsonschema.validate``, whose
   default ``referencing`` registry downloads remote references with ``urlopen``.

This plugin replaces (1) with a loader that maps the URL to a file, and for (2) passes
``jsonschema.validate`` a ``referencing.Registry`` whose ``retrieve`` callback uses the
same loader.  Local schema paths keep stac-validator's own behaviour.

A URL maps to ``<schemas dir>/<host>/<path>`` (the layout of
``conformance-assets/stac-schemas``: each file at its URL without the scheme).  Files
not found there are looked up among the schemas that ship with ``pystac``
(STAC 1.1.0 core and the GeoJSON schemas).  A schema found nowhere is an error that
names the URL and the directory, unless ``--stac-schemas-allow-network`` is given.

Load it with ``-p conformance.stac_offline`` (repository root on ``PYTHONPATH``) and
``--stac-schemas-dir DIR`` (or env ``CONFORMANCE_STAC_SCHEMAS_DIR``).  Without a
directory the plugin does nothing, and stac-validator goes to the network as usual.
"""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path
from urllib.parse import urlsplit

import pytest

ENV_DIR = "CONFORMANCE_STAC_SCHEMAS_DIR"


class SchemaNotAvailableOffline(LookupError):
    """A schema URL that has no local copy (and network fallback is off)."""


class OfflineSchemaStore:
    """Maps schema URLs to local files and parses them (cached)."""

    def __init__(self, root: Path, *, allow_network: bool = False):
        self.root = Path(root)
        self.allow_network = allow_network
        self._extra = self._pystac_roots()
        self._cache: dict[str, dict] = {}
        self._lock = threading.Lock()
        self.served: dict[str, str] = {}  # url -> local file (or "network")

    @staticmethod
    def _pystac_roots() -> dict[str, Path]:
        """URL prefix -> directory for the schemas bundled with pystac (if installed)."""
        try:
            import pystac.validation

            base = Path(pystac.validation.__file__).parent / "jsonschemas"
        except Exception:  # pragma: no cover - pystac is optional here
            return {}
        roots = {"geojson.org/schema/": base / "geojson"}
        stac_spec = base / "stac-spec"
        if stac_spec.is_dir():
            for version_dir in stac_spec.iterdir():
                # pystac keeps item/catalog/collection/common... flat per version
                roots[f"schemas.stacspec.org/{version_dir.name}/"] = version_dir
        return roots

    @staticmethod
    def key(url: str) -> str:
        """``https://host/a/b.json#frag`` -> ``host/a/b.json``."""
        parts = urlsplit(url)
        return f"{parts.netloc}{parts.path}"

    def local_path(self, url: str) -> Path | None:
        key = self.key(url)
        candidate = self.root / key
        if candidate.is_file():
            return candidate
        for prefix, directory in self._extra.items():
            if key.startswith(prefix):
                # flat layout: keep only the file name (stac-spec) / rest (geojson)
                candidate = directory / Path(key).name
                if candidate.is_file():
                    return candidate
        return None

    def load(self, url: str) -> dict:
        key = self.key(url)
        with self._lock:
            if key in self._cache:
                return self._cache[key]
        path = self.local_path(url)
        if path is not None:
            with open(path, encoding="utf-8") as fh:
                data = json.load(fh)
            self.served[key] = str(path)
        elif self.allow_network:
            import requests

            response = requests.get(url, timeout=60)
            response.raise_for_status()
            data = response.json()
            self.served[key] = "network"
        else:
            raise SchemaNotAvailableOffline(
                f"no local copy of JSON schema {url} (looked for {self.root / key}); "
                f"add the file there or run with --stac-schemas-allow-network"
            )
        with self._lock:
            self._cache[key] = data
        return data

    def registry(self):
        """A ``referencing`` registry that resolves remote ``$ref`` via :meth:`load`."""
        import referencing
        import referencing.jsonschema
        from jsonschema_specifications import REGISTRY as META_SCHEMAS

        def retrieve(uri: str):
            return referencing.Resource.from_contents(
                self.load(uri), default_specification=referencing.jsonschema.DRAFT202012
            )

        return META_SCHEMAS.combine(referencing.Registry(retrieve=retrieve))


_installed: dict = {}


def install(root: Path, *, allow_network: bool = False) -> OfflineSchemaStore:
    """Patch stac-validator (idempotent per process) to use ``root``; returns the store."""
    import jsonschema
    from stac_validator import validate as sv_validate
    from stac_validator.utilities import is_valid_url

    if "store" in _installed:
        return _installed["store"]

    store = OfflineSchemaStore(root, allow_network=allow_network)
    registry = store.registry()
    original_fetch = sv_validate.fetch_and_parse_schema
    original_custom_validator = sv_validate.StacValidate.custom_validator

    def fetch_and_parse_schema(input_path: str) -> dict:
        if is_valid_url(input_path):
            return store.load(input_path)
        return original_fetch(input_path)

    def custom_validator(self) -> None:
        # Same as stac-validator's branch for online schemas, but with our registry
        # for the $refs; local and relative schema paths: unchanged behaviour.
        if is_valid_url(self.schema):
            schema = fetch_and_parse_schema(self.schema)
            jsonschema.validate(self.stac_content, schema, registry=registry)
        else:
            original_custom_validator(self)

    sv_validate.fetch_and_parse_schema = fetch_and_parse_schema
    sv_validate.StacValidate.custom_validator = custom_validator
    _installed.update(
        store=store,
        undo=lambda: (
            setattr(sv_validate, "fetch_and_parse_schema", original_fetch),
            setattr(sv_validate.StacValidate, "custom_validator", original_custom_validator),
        ),
    )
    return store


def uninstall() -> None:
    if "undo" in _installed:
        _installed.pop("undo")()
        _installed.clear()


# ---------------------------------------------------------------------------
# pytest hooks
# ---------------------------------------------------------------------------


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("stac-offline", "offline STAC schema validation")
    group.addoption(
        "--stac-schemas-dir",
        default=os.environ.get(ENV_DIR) or None,
        help="Directory with STAC JSON schemas laid out as <host>/<path> of their URLs "
        f"(default: env {ENV_DIR}); stac-validator then needs no network.",
    )
    group.addoption(
        "--stac-schemas-allow-network",
        action="store_true",
        default=False,
        help="Download schemas that are not in --stac-schemas-dir instead of failing.",
    )


def pytest_configure(config: pytest.Config) -> None:
    directory = config.getoption("--stac-schemas-dir")
    if not directory:
        return
    root = Path(directory).expanduser().resolve()
    if not root.is_dir():
        raise pytest.UsageError(f"--stac-schemas-dir {root} is not a directory")
    config.stash[_store_key] = install(
        root, allow_network=config.getoption("--stac-schemas-allow-network")
    )


_store_key = pytest.StashKey[OfflineSchemaStore]()


def pytest_report_header(config: pytest.Config):
    store = config.stash.get(_store_key, None)
    if store is not None:
        network = "with network fallback" if store.allow_network else "no network"
        return [f"STAC schemas: offline from {store.root} ({network})"]
    return None


def pytest_unconfigure(config: pytest.Config) -> None:
    if config.stash.get(_store_key, None) is not None:
        uninstall()
