"""Secondary web services (openEO "Secondary Services"): XYZ map tiles of a stored process graph.

    GET /service_types                                  what can be published: XYZ
    GET, POST /services                                 the caller's services; publish one (201)
    GET, PATCH, DELETE /services/{id}                   describe, change (cached tiles go stale), delete
    GET /services/{id}/logs                             tiles that failed to render (the last 1000)
    GET /services/{id}/tiles/{z}/{x}/{y}                a 256×256 PNG in web Mercator, no token needed

Map clients (Leaflet, OpenLayers, the Web Editor) fetch tiles without a token: the service id (128 random
bits) makes the URL unguessable, and only its owner can list, read or change the service.
Rendering: backend/web_services/render.py; cache: backend/web_services/cache.py.
"""

from __future__ import annotations

import math

from flask import Blueprint, Response, jsonify, request

from apicore import errors
from apicore.views.context import MAX_OFFSET, api_root, integer_value, object_body, require_caller
from apicore.views.log_pages import log_arguments, log_links
from backend.accounting.pricing import check_budget, plan_for
from backend.api.context import services
from backend.processing.engine.graph import Graph
from backend.storage.models import WebService
from backend.web_services.render import render_tile
from backend.web_services.tiles import MAX_ZOOM, valid_tile

bp = Blueprint("web_services", __name__)

SERVICE_TYPES = {
    "XYZ": {
        "title": "XYZ tiles",
        "description": "256×256 PNG tiles in web Mercator (EPSG:3857) at {z}/{x}/{y}, for Leaflet, OpenLayers "
                       "and the Web Editor. Every load_collection of the process loads the tile's area on the "
                       "tile's grid. The result must have x and y and one band (grey) or three (RGB); "
                       "missing values are transparent. Each rendered tile is charged to the service's owner "
                       "like a synchronous request; cached tiles are free.",
        "configuration": {
            "range": {"type": "array", "minItems": 2, "maxItems": 2, "items": {"type": "number"},
                      "description": "Values mapped to 0 and 255 (linear stretch, clipped). Default: each tile's "
                                     "own minimum and maximum, which differ from tile to tile.",
                      "required": False},
        },
        "process_parameters": [],
        "links": [],
    },
}
PATCHABLE = ("title", "description", "process", "enabled", "configuration", "plan", "budget")


@bp.get("/service_types")
def service_types():
    return jsonify(SERVICE_TYPES)


@bp.get("/services")
def list_services():
    caller = require_caller()
    root = api_root()
    return jsonify({"services": [_summary(row, root) for row in services().web_services.list(caller.user_id)],
                    "links": []})


@bp.post("/services")
def create_service():
    caller = require_caller()
    body = object_body()
    service_type = _service_type(body.get("type"))
    fields = _checked(body, ("title", "description", "enabled", "configuration", "plan", "budget"))
    row = services().web_services.create(caller.user_id, service_type, _process(body.get("process")),
                                         fields.pop("configuration", {}), **fields)
    return Response(status=201, headers={"Location": f"{api_root()}/services/{row.service_id}",
                                         "OpenEO-Identifier": row.service_id})


@bp.get("/services/<service_id>")
def describe_service(service_id: str):
    row = _owned(service_id)
    return jsonify({**_summary(row, api_root()), "process": row.process, "configuration": row.configuration or {},
                    "attributes": {}})


@bp.patch("/services/<service_id>")
def update_service(service_id: str):
    caller = require_caller()
    _owned(service_id)
    body = object_body()
    if "type" in body:
        raise errors.BadRequest(
            reason="a service's 'type' cannot be changed: publish a new service of the other type")
    unknown = sorted(set(body) - set(PATCHABLE))
    if unknown:
        raise errors.BadRequest(reason=f"unknown field(s) {unknown}; a service's changeable fields are {list(PATCHABLE)}")
    changes = _checked(body, PATCHABLE)
    if "process" in body:
        changes["process"] = _process(body["process"])
    if changes.get("configuration") is None and "configuration" in changes:
        changes["configuration"] = {}
    if services().web_services.update(caller.user_id, service_id, changes) is None:
        raise _not_found(service_id)
    services().tiles.drop(service_id)
    return Response(status=204)


@bp.delete("/services/<service_id>")
def delete_service(service_id: str):
    caller = require_caller()
    if not services().web_services.delete(caller.user_id, service_id):
        raise _not_found(service_id)
    services().tiles.drop(service_id)
    return Response(status=204)


@bp.get("/services/<service_id>/logs")
def service_logs(service_id: str):
    offset, level, limit = log_arguments()
    after = integer_value("offset", offset, 0, MAX_OFFSET, 0)  # entry ids are sequence numbers (as job logs')
    _owned(service_id)
    entries, more = services().service_logs.read(service_id, after, level, limit)
    last = entries[-1]["id"] if more and entries else None
    links = log_links(f"{api_root()}/services/{service_id}/logs", last, limit, level)
    return jsonify({"level": level, "logs": entries, "links": links})


@bp.get("/services/<service_id>/tiles/<int:z>/<int:x>/<int:y>")
def tile(service_id: str, z: int, x: int, y: int):
    """No token: the unguessable service id is the authorisation (map clients send none)."""
    parts = services()
    row = parts.web_services.by_id(service_id)
    if row is None or not row.enabled:
        raise _not_found(service_id, "" if row is None else " (it is disabled: PATCH it with \"enabled\": true)")
    if not valid_tile(z, x, y):
        raise errors.BadRequest(reason=f"tile {z}/{x}/{y} does not exist: z is 0..{MAX_ZOOM}, x and y 0..2^z-1")
    key = (service_id, row.version, z, x, y)
    png = parts.tiles.get(key)
    hit = png is not None
    if png is None:
        png = render_tile(parts, row, z, x, y, api_root())
        parts.tiles.put(key, png)
    response = Response(png, mimetype="image/png",
                        headers={"Cache-Control": "no-cache", "X-Tile-Cache": "hit" if hit else "miss"})
    response.set_etag(f"{service_id}-{row.version}-{z}-{x}-{y}")
    return response.make_conditional(request)


def _summary(row: WebService, root: str) -> dict:
    summary = {"id": row.service_id, "title": row.title, "description": row.description,
               "url": f"{root}/services/{row.service_id}/tiles/{{z}}/{{x}}/{{y}}", "type": row.type,
               "enabled": row.enabled, "created": row.created.strftime("%Y-%m-%dT%H:%M:%SZ"),
               "costs": round(row.costs or 0.0, 6), "budget": row.budget}
    if row.plan is not None:
        summary["plan"] = row.plan
    return summary


def _owned(service_id: str) -> WebService:
    row = services().web_services.get(require_caller().user_id, service_id)
    if row is None:
        raise _not_found(service_id)
    return row


def _not_found(service_id: str, why: str = "") -> errors.OpenEOError:
    return errors.ServiceNotFound(f"Service '{service_id}' does not exist{why}. GET /services lists yours.")


def _service_type(value) -> str:
    if not isinstance(value, str):
        raise errors.BadRequest(reason=f"'type' is required: one of {list(SERVICE_TYPES)} (GET /service_types)")
    for name in SERVICE_TYPES:
        if name.lower() == value.lower():  # service types are case-insensitive
            return name
    raise errors.ServiceUnsupported(f"Service type '{value}' is not supported: GET /service_types lists "
                                    f"{list(SERVICE_TYPES)}.")


def _process(process) -> dict:
    if not isinstance(process, dict) or not isinstance(process.get("process_graph"), dict):
        raise errors.ProcessGraphMissing("Send the process as {\"process\": {\"process_graph\": {...}}}.")
    Graph.parse(process["process_graph"])  # structural errors now, not at the first tile
    return process


def _checked(body: dict, names) -> dict:
    """The given fields of ``names`` in ``body``, validated."""
    fields = {name: body[name] for name in names if name in body}
    for name in ("title", "description"):
        if fields.get(name) is not None and not isinstance(fields[name], str):
            raise errors.BadRequest(reason=f"'{name}' must be a string or null")
    if "enabled" in fields and not isinstance(fields["enabled"], bool):
        raise errors.BadRequest(reason="'enabled' must be true or false")
    if "configuration" in fields:
        fields["configuration"] = _configuration(fields["configuration"])
    plans = services().settings.plans
    if "plan" in fields:
        fields["plan"] = plan_for(plans, fields["plan"]).name if fields["plan"] is not None else None
    if "budget" in fields:
        fields["budget"] = check_budget(fields["budget"], plan_for(plans, fields.get("plan")))
    return fields


def _configuration(value) -> dict:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise errors.BadRequest(reason="'configuration' must be an object (GET /service_types lists its parameters)")
    for name in value:
        if name not in SERVICE_TYPES["XYZ"]["configuration"]:
            raise errors.ServiceConfigUnsupported(parameter=name)
    if "range" in value:
        low_high = value["range"]
        if (not isinstance(low_high, list) or len(low_high) != 2
                or not all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
                           for v in low_high) or low_high[0] >= low_high[1]):
            raise errors.ServiceConfigInvalid(parameter="range", reason="give two finite numbers [low, high], low < high")
    return dict(value)
