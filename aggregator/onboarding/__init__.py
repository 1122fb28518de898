"""Partner registration: the onboarding self-check of a candidate backend, and adding/removing backends
at runtime (admin API and CLI share registration.py).

    results.py           CheckResult (name, passed/failed/skipped, detail), SelfCheckReport
    candidate.py         the backend under check through the aggregator's Upstream; credentials, options
    openapi.py           response documents validated against the openEO API (openeo_api/openapi.yaml)
    documents.py         valid_document: GET and validate, or the check's failure naming the request
    checks_discovery.py  well-known, API version, shared OIDC issuer, /health, CORS
    checks_metadata.py   collections, processes, file formats (schemas)
    checks_processing.py a small sync request, signed result URLs (need credentials)
    self_check.py        run_self_check(url, credentials=..., options=...) -> SelfCheckReport
    registration.py      register / unregister on a BackendRegistry (refused when a check fails)
"""
