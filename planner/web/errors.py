"""Every error as RFC 9457 ``application/problem+json``, with field-level ``errors``."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from flask import Flask, Response, has_request_context, json, request
from werkzeug.exceptions import HTTPException, InternalServerError

from planner.domain.errors import PlannerError
from planner.export.to_fhir import operation_outcome
from planner.schemas.protocol_file import flatten_errors

PROBLEM_MIME = "application/problem+json"
PROBLEM_BASE = "https://stride-back.dev/problems/"
log = logging.getLogger(__name__)

#: Domain error code → HTTP status.
STATUS_FOR_CODE = {
    "invalid_injury": 422,
    "invalid_request": 422,
    "no_matching_protocol": 422,
    "unknown_protocol": 404,
    "plan_not_found": 404,
    "feed_not_found": 404,
    "invalid_event": 422,
    "event_conflict": 409,
    "plan_not_active": 409,
    "revision_conflict": 409,
    "precondition_failed": 412,
    "webhook_not_found": 404,
    "delivery_not_found": 404,
    "invalid_webhook": 422,
    "webhook_disabled": 409,
}

TITLES = {
    400: "Malformed request",
    401: "Authentication required",
    403: "Forbidden",
    404: "Not found",
    405: "Method not allowed",
    409: "Conflict",
    412: "Precondition failed",
    413: "Request too large",
    415: "Unsupported media type",
    422: "Invalid request",
    500: "Internal server error",
}


def problem(
    status: int,
    *,
    detail: str | None = None,
    code: str | None = None,
    errors: Mapping[str, list[str]] | None = None,
    headers: Mapping[str, str] | None = None,
) -> Response:
    """Build one problem response; ``code`` names the problem type."""
    body: dict[str, Any] = {
        "type": PROBLEM_BASE + (code or str(status)),
        "title": TITLES.get(status, "Error"),
        "status": status,
    }
    if detail:
        body["detail"] = detail
    if errors:
        body["errors"] = {k: list(v) for k, v in errors.items()}
    if has_request_context() and request.path.startswith("/fhir/"):
        # FHIR clients expect OperationOutcome, not problem+json.
        outcome = operation_outcome(status, detail or body["title"], issues=errors)
        response = Response(json.dumps(outcome), status=status, mimetype="application/fhir+json")
    else:
        response = Response(json.dumps(body), status=status, mimetype=PROBLEM_MIME)
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response


def handle_http_exception(error: HTTPException) -> Response:
    status = error.code or 500
    data = getattr(error, "data", None) or {}
    errors = None
    messages = data.get("errors") or data.get("messages")
    if messages:
        # webargs nests by location ({"json": {...}, "query": {...}}): drop that level.
        if isinstance(messages, Mapping) and set(messages) <= {"json", "query", "headers", "form"}:
            flat: dict[str, list[str]] = {}
            for location_errors in messages.values():
                flat.update(flatten_errors(location_errors))
            errors = flat
        else:
            errors = flatten_errors(messages)
    detail = data.get("message") or (
        "The request body does not match the schema." if errors else error.description
    )
    headers = dict(data.get("headers") or {})
    if status == 405 and error.get_headers():
        headers.update({k: v for k, v in error.get_headers() if k.lower() == "allow"})
    return problem(status, detail=detail, errors=errors, headers=headers)


def handle_planner_error(error: PlannerError) -> Response:
    status = STATUS_FOR_CODE.get(error.code, 422)
    return problem(status, detail=error.detail, code=error.code, errors=error.errors or None)


def handle_unexpected(error: Exception) -> Response:
    """Log the traceback; show the client nothing about the internals."""
    log.exception("Unhandled error", exc_info=error)
    return problem(500, detail=InternalServerError.description)


def register_error_handlers(app: Flask) -> None:
    app.register_error_handler(HTTPException, handle_http_exception)
    app.register_error_handler(PlannerError, handle_planner_error)
    app.register_error_handler(Exception, handle_unexpected)
