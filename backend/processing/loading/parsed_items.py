"""STAC items parsed once per load instead of twice.

A load parses its items with odc-stac (``parse_items``: bands, grids, footprints; ~0.5 ms per item) to
choose the output grid (``grid.py``), and ``odc.stac.load`` parsed the very same items again: a tenth of a
small request (0.25 MP x 6 dates). Inside :func:`shared`, :func:`parse` remembers its result, and the
``parse_items`` that ``odc.stac.load`` calls (replaced by :func:`install`) hands it back when it is asked
for the same Item objects in the same order with odc-stac's default metadata parser (what ``load`` uses
without ``stac_cfg``/``with_properties``); anything else is parsed as before. Per context (ContextVar),
so overlapping requests never see each other's items.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar

import odc.stac._stac_load as stac_load
from odc.stac import ParsedItem
from odc.stac._mdtools import StacMDParser, parse_items as odc_parse_items

_remembered: ContextVar[tuple[list, list[ParsedItem]] | None] = ContextVar("parsed_items", default=None)
_active: ContextVar[bool] = ContextVar("parsed_items_active", default=False)


@contextmanager
def shared() -> Iterator[None]:
    """Items parsed by :func:`parse` in this block are not parsed again by ``odc.stac.load``."""
    active, remembered = _active.set(True), _remembered.set(None)
    try:
        yield
    finally:
        _remembered.reset(remembered)
        _active.reset(active)


def parse(items: Sequence, before_each: Callable[[], None] = lambda: None) -> list[ParsedItem]:
    """odc-stac's parse of ``items``; ``before_each`` runs before each item (a deadline check)."""
    parsed = []
    for item in odc_parse_items(items):  # lazy: one item at a time
        parsed.append(item)
        before_each()
    if _active.get():
        _remembered.set((list(items), parsed))  # the items themselves: their identity is the key
    return parsed


def _parse_items(items: Iterable, cfg=None, md_plugin=None, asset_absolute_paths: bool = True) -> Iterator[ParsedItem]:
    remembered = _remembered.get()
    items = list(items)
    if (remembered is not None and cfg is None and asset_absolute_paths and _default_parser(md_plugin)
            and len(items) == len(remembered[0]) and all(a is b for a, b in zip(items, remembered[0]))):
        return iter(remembered[1])
    return odc_parse_items(items, cfg, md_plugin, asset_absolute_paths)


def _default_parser(md_plugin) -> bool:
    return md_plugin is None or (type(md_plugin) is StacMDParser and not getattr(md_plugin, "_cfg", None))


def install() -> None:
    if stac_load.parse_items is not _parse_items:
        stac_load.parse_items = _parse_items
