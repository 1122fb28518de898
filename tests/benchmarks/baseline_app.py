"""The benchmark's baseline: a bare Flask app answering a constant 20 KB JSON document.

Served by ``bench_metadata.py`` under the same gunicorn settings as ``openeo-backend serve`` (gthread
workers and threads, access log on), so the CPU cost of our endpoints can be quoted as a ratio to
"Flask + gunicorn doing nothing but sending 20 KB", which varies far less between machines than
absolute milliseconds do.

    gunicorn --chdir tests/benchmarks baseline_app:app
"""

from __future__ import annotations

import json

from flask import Flask, Response

BODY_BYTES = 20 * 1024


def _constant_document(size: int = BODY_BYTES) -> bytes:
    """A deterministic JSON object of exactly ``size`` bytes (shaped a little like process metadata)."""
    entries = []
    body = b""
    i = 0
    while True:
        entries.append({"id": f"process_{i:03d}", "summary": "A constant entry of the baseline document.",
                        "categories": ["math", "baseline"], "experimental": False})
        candidate = json.dumps({"entries": entries, "padding": ""}, separators=(",", ":")).encode()
        if len(candidate) > size:
            entries.pop()
            break
        body = candidate
        i += 1
    padding = size - len(body)
    return json.dumps({"entries": entries, "padding": "x" * padding}, separators=(",", ":")).encode()


BODY = _constant_document()
assert len(BODY) == BODY_BYTES

app = Flask("benchmark_baseline")


@app.get("/")
def constant():
    return Response(BODY, content_type="application/json")


@app.get("/health")
def health():
    return Response(b'{"status":"ok"}', content_type="application/json")
