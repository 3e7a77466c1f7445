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
definitions — ``Planner.authenticate`` and the plans blueprint's declared scopes for who
may read, :func:`planner.web.conditional.feed_answer` for a feed's answer and validators,
``Planner.served_tail`` for the plan's ETag (and its bytes, built only for a 200) — and
tests check both paths answer alike, byte for byte.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from planner import links
from planner.service import Planner
from planner.service.rendering import served_body
from planner.web.auth import PLAN_SCOPES
from planner.web.conditional import ICAL_CONTENT_TYPE, feed_answer, none_match

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]
Answer = tuple[str, list[tuple[str, str]], bytes]

_FEEDS = links.FEEDS + "/"
_ICS = links.CALENDAR_SUFFIX
_PLANS = links.PLANS + "/"
_PLAN_READ_SCOPE = PLAN_SCOPES.read
_STATUS_LINES = {200: "200 OK", 304: "304 NOT MODIFIED"}


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
        answer = feed_answer(
            self.planner,
            token,
            if_none_match=environ.get("HTTP_IF_NONE_MATCH"),
            if_modified_since=environ.get("HTTP_IF_MODIFIED_SINCE"),
            rerender=False,
        )
        if answer is None:
            return None  # unknown, or due for its re-render: the app answers
        headers = answer.headers
        if answer.status == 200:
            headers = [
                *headers,
                ("Content-Type", ICAL_CONTENT_TYPE),
                ("Content-Length", str(len(answer.body))),
            ]
        return _STATUS_LINES[answer.status], headers, answer.body

    def _plan(self, environ: dict[str, Any], plan_id: str) -> Answer | None:
        if "fhir" in environ.get("HTTP_ACCEPT", ""):
            return None  # a FHIR CarePlan: the app makes it
        key = self.planner.authenticate(environ.get("HTTP_AUTHORIZATION"))
        if key is None or not key.allows(_PLAN_READ_SCOPE):
            return None  # the app answers 401 or 403
        document = self.planner.plan_document(key.organisation, plan_id)  # 404: the app's
        tail, etag = self.planner.served_tail(document)
        if_none_match = environ.get("HTTP_IF_NONE_MATCH")
        if if_none_match is not None and none_match(etag, if_none_match):
            return "304 NOT MODIFIED", [("ETag", etag)], b""
        body = served_body(document, tail)  # only for a 200
        return (
            "200 OK",
            [
                ("Content-Type", "application/json"),
                ("Content-Length", str(len(body))),
                ("ETag", etag),
            ],
            body,
        )
