"""GET /file_formats: exactly the output formats the writers implement and the input formats load_url reads."""

from __future__ import annotations


def file_formats() -> dict:
    from backend.processing.processes.load_url import input_formats
    from backend.processing.writers import output_formats

    return {"input": input_formats(), "output": output_formats()}
