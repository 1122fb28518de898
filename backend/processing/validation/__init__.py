"""Process validation without execution (POST /validation; reused by batch jobs and the aggregator).

    from backend.processing.validation import validate_process
    problems = validate_process({"process_graph": {...}}, run_context)   # [] when valid

``run_context`` is the executor's RunContext (services, api_root, udp_lookup, user_id) or a
ValidationContext (pluggable spec lookup, UDP lookup, catalog; see context.py). Every problem is
reported, each as ``{"id": node path, "code", "message", "links"}``; no pixels are read.
"""

from backend.processing.validation.context import ValidationContext
from backend.processing.validation.validator import validate_process

__all__ = ["ValidationContext", "validate_process"]
