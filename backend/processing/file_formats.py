"""GET /file_formats: exactly the output formats the writers implement and the input formats load_url and
load_uploaded_files read (each description says which process reads it)."""

from __future__ import annotations


def file_formats() -> dict:
    from backend.processing.processes.load_uploaded_files import INPUT_FORMATS as UPLOADED_FORMATS
    from backend.processing.processes.load_url import input_formats
    from backend.processing.writers import output_formats

    inputs = {**input_formats(), **{name: dict(spec) for name, spec in UPLOADED_FORMATS.items()}}
    return {"input": inputs, "output": output_formats()}
