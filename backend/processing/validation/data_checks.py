"""Checks that need the backend's data: load_collection (dry run, item search only), save_result formats
and load_url input formats.

Each check returns the openEO errors it finds (possibly several per node) instead of raising the first.
"""

from __future__ import annotations

import logging
from typing import Any

from apicore import errors
from backend.processing.validation.context import ValidationContext
from backend.processing.validation.schemas import is_literal

log = logging.getLogger(__name__)


def check_load_collection(arguments: dict, already_invalid: set[str],
                          context: ValidationContext) -> list[errors.OpenEOError]:
    """Collection, bands, extents and — when all of them are known and fine — the item search.

    Arguments computed at run time (references) are skipped, and so is anything depending on them;
    property filters (callbacks) are not evaluated: the search runs without them, which can only
    find more items, so a "no data" answer stays true.
    """
    # Imported here: the loaders pull in odc-stac and xarray, which the API process need not load at start.
    from backend.processing.loading import plan_load
    from backend.processing.loading.bands import resolve_bands
    from backend.processing.loading.extents import normalize_bbox, normalize_interval

    catalog = context.collections
    collection_id = arguments.get("id")
    if catalog is None or "id" in already_invalid or not isinstance(collection_id, str):
        return []
    try:
        ref = catalog.ref(collection_id)
        metadata = catalog.describe(collection_id, context.api_root)
    except errors.OpenEOError as exc:
        return [exc]
    found: list[errors.OpenEOError] = []
    searchable = True
    checks = (("bands", lambda value: resolve_bands(metadata, value)),
              ("spatial_extent", normalize_bbox),
              ("temporal_extent", normalize_interval))
    for name, check in checks:
        value = arguments.get(name)
        if name in already_invalid or not is_literal(value):
            searchable = False
            continue
        try:
            check(value)
        except errors.OpenEOError as exc:
            found.append(exc)
            searchable = False
    if searchable:
        try:
            plan_load(ref, metadata, arguments.get("spatial_extent"), arguments.get("temporal_extent"),
                      arguments.get("bands"), None)
        except errors.OpenEOError as exc:
            found.append(exc)
        except Exception as exc:  # a source that is down: the graph may well be fine, say nothing
            log.warning("validation: item search for %s failed: %s", collection_id, exc)
    return found


def check_save_result(arguments: dict, already_invalid: set[str]) -> list[errors.OpenEOError]:
    from backend.processing.writers import check_options, resolve_format

    name = arguments.get("format")
    if "format" in already_invalid or not isinstance(name, str):
        return []
    try:
        output_format = resolve_format(name)
    except errors.OpenEOError as exc:
        return [exc]
    options: Any = arguments.get("options")
    if "options" in already_invalid or not is_literal(options):
        return []
    try:
        check_options(output_format, options)
    except errors.OpenEOError as exc:
        return [exc]
    return []


def check_load_url(arguments: dict, already_invalid: set[str]) -> list[errors.OpenEOError]:
    """load_url's input format and options (nothing is fetched)."""
    from backend.processing.processes.load_url import check_input_options, resolve_input_format

    name = arguments.get("format")
    if "format" in already_invalid or not isinstance(name, str):
        return []
    options: Any = arguments.get("options")
    try:
        canonical = resolve_input_format(name)
        if "options" not in already_invalid and is_literal(options):
            check_input_options(canonical, options)
    except errors.OpenEOError as exc:
        return [exc]
    return []


def check_load_uploaded_files(arguments: dict, already_invalid: set[str]) -> list[errors.OpenEOError]:
    """load_uploaded_files' paths, input format and options, when given as literals (no file is read)."""
    from backend.processing.processes.load_uploaded_files import check_arguments

    values = [arguments.get(name) for name in ("paths", "format", "options")]
    if "paths" not in arguments or "format" not in arguments:  # reported as missing already
        return []
    if already_invalid & {"paths", "format", "options"} or not all(is_literal(value) for value in values):
        return []
    try:
        check_arguments(*values)
    except errors.OpenEOError as exc:
        return [exc]
    return []
