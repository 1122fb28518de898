"""A job run's costs charged to the federation ledger once, whichever request sees them first.

    charges = JobCharges(parts.accounting, JobRecords(parts.db))
    seen_from = utcnow()                                    # before the record and the document are read
    record = charges.records.get(user_id, [fid]).get(fid)
    document = <GET /jobs/{id} of the backend>
    charges.charge_due(caller, ref, document, record, seen_from)

The charge's ref names the run (aggregator/jobs/costs.py): describe, listing, start and delete, in any
number of threads and processes, and after restarts, charge a run once (the ledger keeps one charge per
ref; ``charged_run`` only saves the ledger round trip). A run started since ``seen_from`` may not be the
run the document shows, so such a look charges nothing; the next look does.
"""

from __future__ import annotations

from datetime import datetime
from typing import Mapping

from aggregator.accounting import FederationAccounting
from aggregator.jobs.costs import due_costs, run_ref
from aggregator.jobs.ids import BackendJobRef
from aggregator.storage.job_records import JobRecord, JobRecords
from apicore.services import Caller


class JobCharges:
    def __init__(self, accounting: FederationAccounting, records: JobRecords):
        self.accounting = accounting
        self.records = records

    def charge_due(self, caller: Caller, ref: BackendJobRef, document: Mapping, record: JobRecord | None,
                   seen_from: datetime) -> None:
        """Charge the costs of the run ``document`` shows unless charged before. ``record`` and
        ``document`` were read after ``seen_from``, the record first."""
        costs = due_costs(document)
        if costs is None:
            return
        run = record.run if record is not None else 0
        if record is not None and (record.charged_run == run or record.started_since(seen_from)):
            return
        self.accounting.charge_job(caller, ref.backend_id, run_ref(ref.federated_id, run), costs)
        self.records.mark_charged(caller.user_id, ref.federated_id, ref.backend_id, run)
