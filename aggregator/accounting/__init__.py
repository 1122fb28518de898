"""The federation's credits: one ledger for all backends (the backend's ``Ledger`` on the aggregator's
database), a balance check before work starts, backend costs charged once, a per-backend usage report.

    accounting = FederationAccounting(db, settings.plans, settings.free_credits)
    accounting.preflight(caller, body.get("plan"), body.get("budget"))      # 402 when broke
    accounting.charge_result(caller, "b1", request_id, response.headers.get("OpenEO-Costs"))
    accounting.charge_job(caller, "b1", f"{job_id}@{run}", job["costs"])    # once the job is final
    accounting.usage_report(since=...)                                     # rows for partners
    accounting.me_document(caller, root)                                   # GET /me
"""

from aggregator.accounting.ledger import FederationAccounting, parse_costs
from aggregator.accounting.report import render_usage_report

__all__ = ["FederationAccounting", "parse_costs", "render_usage_report"]
