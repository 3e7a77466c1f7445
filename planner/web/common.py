"""Small helpers shared by the blueprints."""

from __future__ import annotations

from flask import Response, current_app, g, request

from planner.service import PlanDocument, Planner, PlanRecord
from planner.web.conditional import none_match

ICAL_MIME = "text/calendar"
JSON_MIME = "application/json"


def planner() -> Planner:
    """The app's use cases: handlers call these and nothing below them."""
    service: Planner = current_app.extensions["planner"]["planner"]
    return service


def current_key_id() -> int | None:
    key = getattr(g, "api_key", None)
    return key.id if key is not None else None


def bytes_response(body: bytes, mimetype: str, status: int = 200) -> Response:
    response = Response(body, status=status, mimetype=mimetype)
    if mimetype == ICAL_MIME:
        response.headers["Content-Type"] = "text/calendar; charset=utf-8"
    return response


def conditional(response: Response) -> Response:
    """A 304 when the request's ``If-None-Match`` names the response's ETag, else the
    response (what Werkzeug's ``make_conditional`` does for us, without its range and
    date handling, which no JSON answer here uses)."""
    if_none_match = request.headers.get("If-None-Match")
    etag = response.headers.get("ETag")
    if if_none_match is None or etag is None or not none_match(etag, if_none_match):
        return response
    return Response(status=304, headers={"ETag": etag})


def plan_response(record: PlanRecord | PlanDocument, status: int = 200) -> Response:
    """The served plan JSON with its strong ETag (usable in ``If-Match``)."""
    body, etag = planner().served(record)
    response = bytes_response(body, JSON_MIME, status)
    response.set_etag(etag.strip('"'))
    return response
