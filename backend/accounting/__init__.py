"""Credits: plans and the pricing formula (pricing.py), the append-only ledger (ledger.py), usage
measurement (usage.py)."""
