"""Bearer API keys: every /v1 route needs one; a key sees only its organisation.

Each /v1 blueprint declares the scopes its routes need when it is protected
(:func:`protect`), so the check is bound to the blueprint itself: renaming one cannot
change what its routes require.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from flask import Blueprint, g, request
from werkzeug.wrappers import Response

from planner.service import ApiKey
from planner.web.common import JSON_MIME, planner
from planner.web.errors import problem

BEARER_SCHEME = {
    "type": "http",
    "scheme": "bearer",
    "description": "An API key from `planner keys create`.",
}


@dataclass(frozen=True, slots=True)
class Scopes:
    """The scope a blueprint's reads need and the one its writes need (``admin`` keys
    have them all)."""

    read: str
    write: str

    @classmethod
    def every_route(cls, scope: str) -> Scopes:
        return cls(read=scope, write=scope)

    def for_method(self, method: str) -> str:
        return self.read if method in ("GET", "HEAD") else self.write


PLAN_SCOPES = Scopes(read="plans:read", write="plans:write")
FEED_ADMIN_SCOPES = Scopes.every_route("feeds:manage")
WEBHOOK_SCOPES = Scopes.every_route("webhooks:manage")


def api_key_check(scopes: Scopes) -> Callable[[], Response | None]:
    """A ``before_request`` hook that sets ``g.api_key`` or answers 401/403."""

    def require_api_key() -> Response | None:
        key = planner().authenticate(request.headers.get("Authorization"))
        if key is None:
            return problem(
                401,
                detail="Send a valid API key: 'Authorization: Bearer <key>'.",
                code="unauthorized",
                headers={"WWW-Authenticate": 'Bearer realm="stride-back"'},
            )
        g.api_key = key
        scope = scopes.for_method(request.method)
        if not key.allows(scope):
            return problem(
                403,
                detail=f"This key lacks the {scope!r} scope.",
                code="insufficient_scope",
                headers={"WWW-Authenticate": f'Bearer error="insufficient_scope", scope="{scope}"'},
            )
        return None

    return require_api_key


def require_json_body() -> Response | None:
    """``before_request`` hook: 415 for a body that is not JSON, before anything parses it
    (a POST without a body, such as a token rotation, is fine)."""
    if request.method not in ("POST", "PUT", "PATCH"):
        return None
    has_body = bool(request.content_length) or "Transfer-Encoding" in request.headers
    charset = request.mimetype_params.get("charset", "utf-8").lower()
    if has_body and (request.mimetype != JSON_MIME or charset not in ("utf-8", "utf8")):
        # other +json types are other formats; JSON is read as UTF-8 (RFC 8259 §8.1)
        return problem(
            415,
            detail="Send the body as JSON in UTF-8 with 'Content-Type: application/json'.",
            code="unsupported_media_type",
        )
    return None


def protect(blueprint: Blueprint, scopes: Scopes = PLAN_SCOPES) -> Blueprint:
    """Guard every route of a /v1 blueprint: API key and ``scopes`` first, then the body's
    type and text, then the ``Idempotency-Key`` (which needs to know the organisation)."""
    from planner.web.idempotency import begin
    from planner.web.input import require_storable_input

    blueprint.before_request(api_key_check(scopes))
    blueprint.before_request(require_json_body)
    blueprint.before_request(require_storable_input)
    blueprint.before_request(begin)
    return blueprint


def current_organisation() -> str:
    key: ApiKey = g.api_key
    return key.organisation
