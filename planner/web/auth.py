"""Bearer API keys: every /v1 route needs one; a key sees only its organisation."""

from __future__ import annotations

from flask import Blueprint, current_app, g, request

from planner.store import ApiKey, Store
from planner.web.errors import problem

BEARER_SCHEME = {
    "type": "http",
    "scheme": "bearer",
    "description": "An API key from `planner keys create`.",
}


def require_api_key():  # type: ignore[no-untyped-def]
    """``before_request`` hook: sets ``g.api_key`` or answers 401."""
    store: Store = current_app.extensions["planner"]["store"]
    key = key_from_header(request.headers.get("Authorization"), store)
    if key is None:
        return problem(
            401,
            detail="Send a valid API key: 'Authorization: Bearer <key>'.",
            code="unauthorized",
            headers={"WWW-Authenticate": 'Bearer realm="stride-back"'},
        )
    g.api_key = key
    scope = required_scope()
    if not key.allows(scope):
        return problem(
            403,
            detail=f"This key lacks the {scope!r} scope.",
            code="insufficient_scope",
            headers={"WWW-Authenticate": f'Bearer error="insufficient_scope", scope="{scope}"'},
        )
    return None


def key_from_header(header: str | None, store: Store) -> ApiKey | None:
    """The active key an ``Authorization: Bearer <key>`` header names, else ``None``
    (also the WSGI fast path's check: one definition of who is let in)."""
    scheme, _, secret = (header or "").partition(" ")
    if scheme.lower() != "bearer" or not secret.strip():
        return None
    return store.authenticate(secret.strip())


#: Blueprints whose every route needs one scope; elsewhere reads need plans:read
#: and writes plans:write.
BLUEPRINT_SCOPES = {"feed_admin": "feeds:manage", "webhooks": "webhooks:manage"}


def scope_for(blueprint: str, method: str) -> str:
    """The scope a request to ``blueprint`` with ``method`` needs (``admin`` keys have
    them all)."""
    if blueprint in BLUEPRINT_SCOPES:
        return BLUEPRINT_SCOPES[blueprint]
    return "plans:read" if method in ("GET", "HEAD") else "plans:write"


def required_scope() -> str:
    """The scope the current request needs."""
    return scope_for(request.blueprint or "", request.method)


def require_json_body():  # type: ignore[no-untyped-def]
    """``before_request`` hook: 415 for a body that is not JSON, before anything parses it
    (a POST without a body, such as a token rotation, is fine)."""
    if request.method not in ("POST", "PUT", "PATCH"):
        return None
    has_body = bool(request.content_length) or "Transfer-Encoding" in request.headers
    if has_body and not request.is_json:
        return problem(
            415,
            detail="Send the body as JSON with 'Content-Type: application/json'.",
            code="unsupported_media_type",
        )
    return None


def protect(blueprint: Blueprint) -> Blueprint:
    """Guard every route of a /v1 blueprint: API key and scope first, then the body's
    type, then the ``Idempotency-Key`` (which needs to know the organisation)."""
    from planner.web.idempotency import begin

    blueprint.before_request(require_api_key)
    blueprint.before_request(require_json_body)
    blueprint.before_request(begin)
    return blueprint


def current_organisation() -> str:
    key: ApiKey = g.api_key
    return key.organisation
