"""Adding and removing backends at runtime, shared by the admin API and the CLI.

    report = register(registry, BackendConfig(id="p", url=...), credentials=..., options=..., force=False)
    departure = unregister(registry, "p")

A registration runs the self-check first and is refused (``SelfCheckFailed``) when a check fails, unless
forced. Only registered backends can be removed at runtime: configured ones live in the settings file
(remove them there and restart). ``sync`` (the worker's ``RegistrySync.sync_now``) brings the registry up
to date with other processes' changes first, so ids and the two-backend minimum are judged on the
current state.
"""

from __future__ import annotations

from typing import Callable

from aggregator.federation.backends import BackendConfig, BackendRegistry, Departure, RegistryError
from aggregator.onboarding.candidate import CheckCredentials, CheckOptions
from aggregator.onboarding.results import SelfCheckReport
from aggregator.onboarding.self_check import run_self_check


class SelfCheckFailed(Exception):
    def __init__(self, backend_id: str, report: SelfCheckReport):
        self.backend_id = backend_id
        self.report = report
        super().__init__(f"backend '{backend_id}' was not registered: the self-check of {report.url} failed "
                         f"({report.summary()}). Fix that and try again, or force the registration.")


class BackendExists(RegistryError):
    pass


class UnknownBackend(RegistryError):
    pass


class ConfiguredBackend(RegistryError):
    pass


def options_for(settings) -> CheckOptions:
    """Check options from the aggregator's settings: its OIDC issuers, at least its own timeouts."""
    return CheckOptions(connect_timeout=max(settings.connect_timeout, CheckOptions.connect_timeout),
                        timeout=max(settings.metadata_timeout, CheckOptions.timeout),
                        federation_issuers=tuple(provider.issuer for provider in settings.oidc_providers))


def check_backend(url: str, backend_id: str = "candidate", *, credentials: CheckCredentials | None = None,
                  options: CheckOptions = CheckOptions()) -> SelfCheckReport:
    return run_self_check(url, credentials=credentials, options=options, backend_id=backend_id)


def register(registry: BackendRegistry, backend: BackendConfig, *, credentials: CheckCredentials | None = None,
             options: CheckOptions = CheckOptions(), force: bool = False,
             sync: Callable[[], object] | None = None) -> SelfCheckReport:
    """Self-check ``backend`` and activate it; raises BackendExists or SelfCheckFailed (unless ``force``)."""
    if sync is not None:
        sync()
    _refuse_existing(registry, backend.id)
    report = check_backend(backend.url, backend.id, credentials=credentials, options=options)
    if not report.passed and not force:
        raise SelfCheckFailed(backend.id, report)
    if sync is not None:
        sync()  # the check took seconds: another process may have taken the id meanwhile
    _refuse_existing(registry, backend.id)
    registry.add(backend)
    return report


def unregister(registry: BackendRegistry, backend_id: str, *,
               sync: Callable[[], object] | None = None) -> Departure | None:
    """Deactivate registered backend ``backend_id``; its jobs then answer ``registry.departed(id)``."""
    if sync is not None:
        sync()
    origin = registry.origin(backend_id)
    if origin is None:
        raise UnknownBackend(f"no backend with id '{backend_id}'; the backends are {', '.join(registry.ids())}")
    if origin == "config":
        raise ConfiguredBackend(f"backend '{backend_id}' is configured in the settings (`backends:`), not "
                                "registered: remove it there and restart the aggregator")
    registry.remove(backend_id)
    return registry.departed(backend_id)


def _refuse_existing(registry: BackendRegistry, backend_id: str) -> None:
    if backend_id in registry:
        raise BackendExists(f"a backend with id '{backend_id}' already exists; remove it first or choose "
                            "another id")

