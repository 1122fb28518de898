"""``/federation/backends``: list, register (after the self-check), describe, remove and re-check backends.

A registration answers 201 with the backend and its self-check report; a failed check answers 409
``SelfCheckFailed`` listing every check, unless the body says ``"force": true``. The backend is active in
this worker at once and in the other workers within ``registry_poll_interval`` seconds.
"""

from __future__ import annotations

from datetime import datetime, timezone

from flask import Blueprint, Response, jsonify
from pydantic import ValidationError

from aggregator.admin import errors as admin_errors
from aggregator.admin.access import parts, require_admin
from aggregator.federation.backends import BackendConfig, Departure, RegistryError
from aggregator.onboarding import registration
from aggregator.onboarding.candidate import CheckCredentials
from apicore import errors
from apicore.views.context import api_root, object_body, request_body

CREDENTIAL_FIELDS = {"username", "password", "token"}


def register_routes(bp: Blueprint) -> None:
    bp.add_url_rule("/federation/backends", view_func=list_backends, methods=["GET"])
    bp.add_url_rule("/federation/backends", view_func=add_backend, methods=["POST"])
    bp.add_url_rule("/federation/backends/<backend_id>", view_func=describe_backend, methods=["GET"])
    bp.add_url_rule("/federation/backends/<backend_id>", view_func=remove_backend, methods=["DELETE"])
    bp.add_url_rule("/federation/backends/<backend_id>/check", view_func=check_backend, methods=["POST"])


def list_backends():
    require_admin()
    federation = parts().federation
    _sync()
    registry = federation.registry
    return jsonify({"backends": [_entry(config, registry.origin(config.id)) for config in registry.snapshot()],
                    "departed": [_departure(d) for d in registry.departures()],
                    "links": [{"rel": "self", "href": f"{api_root()}/federation/backends"}]})


def add_backend():
    require_admin()
    body = object_body()
    force = body.pop("force", False)
    if not isinstance(force, bool):
        raise errors.BadRequest(reason="'force' must be true or false")
    credentials = _credentials(body.pop("credentials", None))
    try:
        backend = BackendConfig.model_validate(body)
    except ValidationError as exc:
        raise errors.BadRequest(reason="invalid backend: " + _pydantic_errors(exc)) from None
    settings = parts().settings
    try:
        report = registration.register(parts().federation.registry, backend, credentials=credentials,
                                       options=registration.options_for(settings), force=force, sync=_sync)
    except registration.SelfCheckFailed as exc:
        raise admin_errors.SelfCheckFailed(str(exc), exc.report.to_dict()) from None
    except RegistryError as exc:
        raise admin_errors.BackendExists(str(exc)) from None
    response = jsonify({"backend": _entry(backend, "registered"), "self_check": report.to_dict()})
    response.status_code = 201
    response.headers["Location"] = f"{api_root()}/federation/backends/{backend.id}"
    return response


def describe_backend(backend_id: str):
    require_admin()
    _sync()
    registry = parts().federation.registry
    config = registry.get(backend_id)
    if config is not None:
        return jsonify(_entry(config, registry.origin(backend_id)))
    departure = registry.departed(backend_id)
    if departure is not None:
        return jsonify(_departure(departure))
    raise _not_found(backend_id)


def remove_backend(backend_id: str):
    require_admin()
    try:
        registration.unregister(parts().federation.registry, backend_id, sync=_sync)
    except registration.UnknownBackend:
        raise _not_found(backend_id) from None
    except RegistryError as exc:  # configured, or too few would be left
        raise admin_errors.BackendRemovalRefused(str(exc)) from None
    return Response(status=204)


def check_backend(backend_id: str):
    require_admin()
    _sync()
    config = parts().federation.registry.get(backend_id)
    if config is None:
        raise _not_found(backend_id)
    body = object_body() if request_body() else {}
    credentials = _credentials(body.get("credentials"))
    report = registration.check_backend(config.url, config.id, credentials=credentials,
                                        options=registration.options_for(parts().settings))
    return jsonify({"backend": backend_id, **report.to_dict()})


def _sync() -> None:
    sync = parts().federation.registry_sync
    if sync is not None:
        sync.sync_now()


def _credentials(value) -> CheckCredentials | None:
    if value is None:
        return None
    if not isinstance(value, dict) or not value or set(value) - CREDENTIAL_FIELDS \
            or not all(isinstance(v, str) for v in value.values()):
        raise errors.BadRequest(reason="'credentials' must be an object with 'username' and 'password', or "
                                       "'token' (what follows 'Bearer ' for the candidate), all strings")
    if "token" not in value and not {"username", "password"} <= set(value):
        raise errors.BadRequest(reason="'credentials' needs 'username' and 'password', or 'token'")
    return CheckCredentials(**value)


def _entry(config: BackendConfig, origin: str | None) -> dict:
    health = parts().federation.monitor.health(config.id)
    return {**config.model_dump(mode="json"), "origin": origin, "status": health.status,
            "last_status_check": _timestamp(health.last_status_check),
            "last_successful_check": _timestamp(health.last_successful_check), "last_error": health.last_error}


def _departure(departure: Departure) -> dict:
    return {"id": departure.backend_id, "title": departure.title, "url": departure.url, "origin": "departed",
            "removed_at": _timestamp(departure.removed_at), "message": departure.message()}


def _not_found(backend_id: str) -> admin_errors.BackendNotFound:
    ids = ", ".join(parts().federation.registry.ids())
    return admin_errors.BackendNotFound(f"No backend '{backend_id}' in the federation; its backends are {ids}.")


def _pydantic_errors(exc: ValidationError) -> str:
    return "; ".join(f"{'.'.join(str(p) for p in e['loc']) or 'body'}: {e['msg']}" for e in exc.errors())


def _timestamp(value: datetime | None) -> str | None:
    return value.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ") if value else None
