"""Batch jobs across the federation: pure functions the aggregator's jobs service calls (no Flask, no HTTP).

    ids.py      federated job ids (``j1-...`` one backend, ``s1-...`` split jobs): encode, decode, locate
    listing.py  GET /jobs merged over the backends, newest first, with a signed page token (cursor.py)
    urls.py     a backend's job URLs mapped onto the aggregator's root (signed URLs kept)
    rewrite.py  job, results, logs and estimate documents as the aggregator shows them
    graphs.py   job ids and results URLs inside process graphs: to the backend that runs a graph, and back
"""
