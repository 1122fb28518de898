"""Holding credits before work starts, so that nobody can spend what they do not have."""

from __future__ import annotations

import math

from apicore import errors
from backend.accounting.ledger import Ledger
from backend.accounting.pricing import Plan


def place_hold(ledger: Ledger, user_id: str, ref: str, plan: Plan, budget: float | None, wanted: float) -> float:
    """Hold min(wanted, budget, balance) credits (at least the fixed fee) for ``ref``; 402 when the
    balance cannot cover the fixed fee. Returns the credits held."""
    balance = ledger.balance(user_id)
    if balance < plan.fixed_fee:
        raise errors.PaymentRequired(
            f"Your balance of {balance:g} credits does not cover the fixed fee of {plan.fixed_fee:g} credits of "
            f"plan '{plan.name}'. Ask the operator for credits (GET /me shows your balance).")
    amount = max(plan.fixed_fee, min(wanted, budget if budget is not None else math.inf, balance))
    if not ledger.hold(user_id, ref, amount):  # a concurrent hold took the credits meanwhile
        raise errors.PaymentRequired(
            f"Your balance of {ledger.balance(user_id):g} credits cannot cover the {amount:g} credits this "
            "request needs to reserve while other requests of yours hold credits. Try again when they finished.")
    return amount
