"""Small helpers shared by the blueprints."""

from __future__ import annotations

from flask import Response, current_app, g

from planner.services import Planner, served_document
from planner.store import PlanDocument, PlanRecord, strong_etag

ICAL_MIME = "text/calendar"
JSON_MIME = "application/json"


def planner() -> Planner:
    return current_app.extensions["planner"]["planner"]


def current_key_id() -> int | None:
    key = getattr(g, "api_key", None)
    return key.id if key is not None else None


def bytes_response(body: bytes, mimetype: str, status: int = 200) -> Response:
    response = Response(body, status=status, mimetype=mimetype)
    if mimetype == ICAL_MIME:
        response.headers["Content-Type"] = "text/calendar; charset=utf-8"
    return response


def plan_response(record: PlanRecord | PlanDocument, status: int = 200) -> Response:
    """The served plan JSON with its strong ETag (usable in ``If-Match``)."""
    body = served_document(record)
    response = bytes_response(body, JSON_MIME, status)
    response.set_etag(strong_etag(body).strip('"'))
    return response
