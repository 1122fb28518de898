"""Holding credits before work starts, so that nobody can spend what they do not have."""

from __future__ import annotations

import math

from apicore import errors
from backend.accounting.ledger import Ledger
from backend.accounting.pricing import Plan


def place_hold(ledger: Ledger, user_id: str, ref: str, plan: Plan, budget: float | None, wanted: float) -> float:
    """Hold min(wanted, budget, balance) credits (at least the fixed fee) for ``ref``; 402 when the
    balance cannot cover the fixed fee. Returns the credits held."""
    most = min(wanted, budget if budget is not None else math.inf)
    held, balance = ledger.hold_within_balance(user_id, ref, plan.fixed_fee, most)
    if held is not None:
        return held
    if balance < plan.fixed_fee:
        raise errors.PaymentRequired(
            f"Your balance of {balance:g} credits does not cover the fixed fee of {plan.fixed_fee:g} credits of "
            f"plan '{plan.name}'. Ask the operator for credits (GET /me shows your balance).")
    # a concurrent hold took the credits between reading the balance and holding
    raise errors.PaymentRequired(
        f"Your balance of {ledger.balance(user_id):g} credits cannot cover the credits this request needs to "
        "reserve while other requests of yours hold credits. Try again when they finished.")
