"""The aggregator's database: the backend's storage reused (users, UDPs, the credit ledger, Alembic
migrations under a lock) plus two tables of its own from the same migration chain (models.py).

    db = open_aggregator_database(settings)   # sqlite:///<data_dir>/aggregator.db, or database_url
    UserStore(db), UdpStore(db), Ledger(db)    # from backend.storage / backend.accounting
    DbBackendStore(db)                         # runtime registrations for the BackendRegistry

Imports nothing of the processing engine (no Dask, xarray, rasterio).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from backend.storage.db import Database
from backend.storage.schema import open_database

if TYPE_CHECKING:
    from aggregator.settings import AggregatorSettings


def open_aggregator_database(settings: "AggregatorSettings", migrate: bool = True) -> Database:
    """The aggregator's database, its schema brought up to date (``migrate=False``: only checked)."""
    return open_database(settings, migrate=migrate)
