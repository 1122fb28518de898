"""The federation layer: which backends there are, how to reach them, whether they are healthy.

    backends.py  BackendConfig and the runtime BackendRegistry
    upstream.py  Upstream: pooled HTTP to one backend, failures as UpstreamError (errors.py)
    fanout.py    fan_out(backends, call, deadline=...) -> FanOut(successes, failures)
    health.py    HealthMonitor (probes, circuit breaker) and the `federation` object of GET /
    caching.py   stale-while-revalidate cache with apicore.cache's get_or_call shape
    wiring.py    Federation: all of the above built from the settings, for create_app

Light on purpose: pydantic, requests and cachetools only (no Flask, no processing stack).
"""
