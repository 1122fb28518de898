"""`openeo-backend credits report`: per user and per job (or synchronous request), what was charged."""

from __future__ import annotations

import csv
import io
import json
from datetime import datetime

from backend.accounting.ledger import Ledger

COLUMNS = ("user", "ref", "kind", "charged", "refunded", "granted", "first", "last")


def cost_report(ledger: Ledger, names: dict[str, str], user_id: str | None = None,
                since: datetime | None = None) -> list[dict]:
    """One row per (user, ref): charges, refunds and grants summed; refs are job ids or sync-<request>."""
    rows: dict[tuple[str, str], dict] = {}
    for entry in ledger.entries(user_id, since):
        if entry.kind in ("hold", "release"):
            continue  # reservations: they net out once settled
        ref = entry.ref or "-"
        row = rows.setdefault((entry.user_id, ref), {
            "user": names.get(entry.user_id, entry.user_id), "ref": ref,
            "kind": "sync" if ref.startswith("sync-") else ("grant" if entry.kind == "grant" else "job"),
            "charged": 0.0, "refunded": 0.0, "granted": 0.0, "first": entry.created, "last": entry.created})
        field = {"charge": "charged", "refund": "refunded", "grant": "granted"}[entry.kind]
        row[field] += abs(entry.amount) if field != "granted" else entry.amount
        row["last"] = entry.created
    result = []
    for row in rows.values():
        row["first"], row["last"] = row["first"].strftime("%Y-%m-%dT%H:%M:%SZ"), row["last"].strftime("%Y-%m-%dT%H:%M:%SZ")
        result.append({k: round(v, 3) if isinstance(v, float) else v for k, v in row.items()})
    return sorted(result, key=lambda r: (r["user"], r["first"]))


def render_rows(rows: list[dict], columns: tuple[str, ...], fmt: str) -> str:
    """CSV under a header of ``columns``, or indented JSON: the format of the backend's cost report and the
    aggregator's usage report alike."""
    if fmt == "json":
        return json.dumps(rows, indent=2)
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue()
