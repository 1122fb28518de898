"""save_result: checks the format now, records what to write; the request or job writes it."""

from __future__ import annotations

from typing import Any

from backend.processing.writers import check_options, resolve_format


def save_result(data: Any, format: str, options: dict | None = None, *, run_context) -> bool:
    output_format = resolve_format(format)  # a wrong format fails before any pixel is computed
    run_context.outputs.append((data, output_format.name, check_options(output_format, options)))
    return True
