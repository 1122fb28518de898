"""The README's Federation section documents every aggregator setting and every key of a backend entry,
with the defaults the code has (a setting added without its README line, or a default changed in one
place only, fails here)."""

from __future__ import annotations

import re
from pathlib import Path

from pydantic import BaseModel
from pydantic_core import PydanticUndefined

from aggregator.federation.backends import BackendConfig
from aggregator.settings import AggregatorSettings

README = Path(__file__).resolve().parents[3] / "README.md"


def federation_tables() -> dict[str, dict[str, str]]:
    """First-column header ("setting", "key") -> {name: default cell}, from the Federation section."""
    text = README.read_text()
    section = text[text.index("\n## Federation\n"):]
    section = section[:section.index("\n## ", 1)]
    tables: dict[str, dict[str, str]] = {}
    current = None
    for line in section.splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")] if line.startswith("|") else None
        if cells is None:
            current = None
        elif current is None:
            current = tables.setdefault(cells[0], {})
        elif not set(cells[0]) <= set("-: "):
            for name in re.findall(r"`([^`]+)`", cells[0]):
                current[name] = cells[1]
    return tables


def fields_of(model: type[BaseModel], prefix: str = "") -> dict[str, object]:
    """Field name (nested rule objects as `collections.allow`) -> default."""
    found = {}
    for name, info in model.model_fields.items():
        default = info.default
        if isinstance(default, BaseModel):
            found.update(fields_of(type(default), f"{prefix}{name}."))
        else:
            found[prefix + name] = default
    return found


def shown(value: object) -> str | None:
    """How a scalar default is written in the table; None for the ones described in words."""
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    if isinstance(value, float):
        return f"`{value:g}`"
    if isinstance(value, (int, str)):
        return f"`{value}`"
    return None


def test_every_setting_is_in_the_readme_with_its_default():
    table = federation_tables()["setting"]
    settings = fields_of(AggregatorSettings)
    assert sorted(table) == sorted(settings)
    for name, default in settings.items():
        if default is not PydanticUndefined and shown(default) is not None:
            assert table[name] == shown(default), name


def test_every_backend_entry_key_is_in_the_readme_with_its_default():
    table = federation_tables()["key"]
    keys = fields_of(BackendConfig)
    assert sorted(table) == sorted(keys)
    for name, default in keys.items():
        if default is PydanticUndefined:
            assert table[name] == "required", name
        elif shown(default) is not None:
            assert table[name] == shown(default), name
