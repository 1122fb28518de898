"""GET /file_formats: exactly the output formats the writers implement; no input formats yet."""

from __future__ import annotations


def file_formats() -> dict:
    from backend.processing.writers import output_formats

    return {"input": {}, "output": output_formats()}
