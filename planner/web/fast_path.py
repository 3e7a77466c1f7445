"""The fast path: the two reads a deployment serves most, answered before Flask.

Feed polling is most of a deployment's traffic (every subscribed calendar, every few
minutes to hours) and nearly every poll is a revalidation answered with 304; clinic
systems poll plans the same way. Flask's request context, URL routing, flask-smorest's
wrappers and webargs cost several times what such an answer itself does, so this WSGI
layer answers the common case of each from prepared reads:

* ``GET``/``HEAD /feeds/<token>.ics`` by a calendar client, for a token whose feed can
  be served as stored;
* ``GET``/``HEAD /v1/plans/<id>`` as JSON, for a valid key with the ``plans:read`` scope
  whose organisation has that plan;

both without a query string. Every other request goes to the app unchanged, and so does
anything the fast path would have to refuse or explain: browsers (the feed's help page),
``?download=1`` or ``?revision=N``, FHIR, a missing, invalid or under-scoped key (401/403
problems), an unknown token or plan (404), a feed due for its re-render, and any failure.
The fast path therefore only ever says "here it is" or "not modified", using the app's own
definitions — :func:`planner.web.auth.key_from_header` and ``scope_for`` for who may read,
:mod:`planner.web.conditional` for validators, ``services.served`` for the plan's bytes and
ETag — and tests check both paths answer alike, byte for byte.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from planner.services import Planner, served
from planner.web.auth import key_from_header, scope_for
from planner.web.conditional import ICAL_CONTENT_TYPE, none_match, not_modified, validators

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]
Answer = tuple[str, list[tuple[str, str]], bytes]

_FEEDS = "/feeds/"
_ICS = ".ics"
_PLANS = "/v1/plans/"
_PLAN_READ_SCOPE = scope_for("plans", "GET")


class FastPath:
    """WSGI middleware: serve plain feed polls and plan reads, pass the rest to ``app``."""

    def __init__(self, app: WSGIApp, planner: Planner) -> None:
        self.app = app
        self.planner = planner

    def __call__(
        self, environ: dict[str, Any], start_response: Callable[..., Any]
    ) -> Iterable[bytes]:
        answer = self._answer(environ)
        if answer is None:
            return self.app(environ, start_response)
        status, headers, body = answer
        start_response(status, headers)
        return [] if environ["REQUEST_METHOD"] == "HEAD" else [body]

    def _answer(self, environ: dict[str, Any]) -> Answer | None:
        if environ.get("REQUEST_METHOD") not in ("GET", "HEAD") or environ.get("QUERY_STRING"):
            return None
        path: str = environ.get("PATH_INFO", "")
        try:
            if path.startswith(_FEEDS) and path.endswith(_ICS):
                return self._feed(environ, path[len(_FEEDS) : -len(_ICS)])
            if path.startswith(_PLANS):
                plan_id = path[len(_PLANS) :]
                if plan_id and "/" not in plan_id and not plan_id.endswith(_ICS):
                    return self._plan(environ, plan_id)
        except Exception:  # noqa: BLE001 - the app answers (and logs) it as a problem
            return None
        return None

    def _feed(self, environ: dict[str, Any], token: str) -> Answer | None:
        if "html" in environ.get("HTTP_ACCEPT", ""):
            return None  # perhaps a browser: the app decides, and may show the help page
        if_none_match = environ.get("HTTP_IF_NONE_MATCH")
        if_modified_since = environ.get("HTTP_IF_MODIFIED_SINCE")
        conditional = if_none_match is not None or if_modified_since is not None
        head = self.planner.current_feed_head(token, body=not conditional)
        if head is None or head.etag is None:
            return None
        headers = validators(head)
        if conditional and not_modified(
            head.etag, head.last_modified, if_none_match, if_modified_since
        ):
            return "304 NOT MODIFIED", headers, b""
        body = head.body
        if body is None:
            body = self.planner.store.get_feed_body(head.plan_id, head.kind)
            if body is None:  # revoked between the two reads: the app answers 404
                return None
        headers += [("Content-Type", ICAL_CONTENT_TYPE), ("Content-Length", str(len(body)))]
        return "200 OK", headers, body

    def _plan(self, environ: dict[str, Any], plan_id: str) -> Answer | None:
        if "fhir" in environ.get("HTTP_ACCEPT", ""):
            return None  # a FHIR CarePlan: the app makes it
        key = key_from_header(environ.get("HTTP_AUTHORIZATION"), self.planner.store)
        if key is None or not key.allows(_PLAN_READ_SCOPE):
            return None  # the app answers 401 or 403
        document = self.planner.store.get_plan_document(key.organisation, plan_id)
        if document is None:
            return None  # the app answers 404
        body, etag = served(document)
        if_none_match = environ.get("HTTP_IF_NONE_MATCH")
        if if_none_match is not None and none_match(etag, if_none_match):
            return "304 NOT MODIFIED", [("ETag", etag)], b""
        return (
            "200 OK",
            [
                ("Content-Type", "application/json"),
                ("Content-Length", str(len(body))),
                ("ETag", etag),
            ],
            body,
        )
