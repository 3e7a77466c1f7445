"""The feed's fast path: calendar polls answered before Flask sees the request.

Feed polling is most of a deployment's traffic (every subscribed calendar, every few
minutes to hours), and nearly every poll is a revalidation answered with 304. Flask's
request context, URL routing and response objects cost several times what the answer
itself does, so this WSGI layer answers the common case — ``GET``/``HEAD`` of
``/feeds/<token>.ics`` by a calendar client, with no query string, for a known token —
from one prepared read, and hands every other request to the app unchanged: browsers
(the help page), ``?download=1``, unknown tokens (404 problem), feeds whose cancelled
events are due to drop out (a re-render), and anything that fails. The Flask view stays
the documented route and answers those; both build their answer with
:mod:`planner.web.conditional`, and a test checks they answer alike.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from planner.services import Planner
from planner.web.conditional import ICAL_CONTENT_TYPE, not_modified, validators

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]

_PREFIX = "/feeds/"
_SUFFIX = ".ics"


class FeedFastPath:
    """WSGI middleware: serve plain feed polls directly, pass everything else to ``app``."""

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

    def _answer(self, environ: dict[str, Any]) -> tuple[str, list[tuple[str, str]], bytes] | None:
        if environ.get("REQUEST_METHOD") not in ("GET", "HEAD"):
            return None
        path: str = environ.get("PATH_INFO", "")
        if not (path.startswith(_PREFIX) and path.endswith(_SUFFIX)) or environ.get("QUERY_STRING"):
            return None
        if "html" in environ.get("HTTP_ACCEPT", ""):
            return None  # perhaps a browser: the app decides, and may show the help page
        token = path[len(_PREFIX) : -len(_SUFFIX)]
        if_none_match = environ.get("HTTP_IF_NONE_MATCH")
        if_modified_since = environ.get("HTTP_IF_MODIFIED_SINCE")
        conditional = if_none_match is not None or if_modified_since is not None
        try:
            head = self.planner.current_feed_head(token, body=not conditional)
        except Exception:  # noqa: BLE001 - the app answers (and logs) it as a problem
            return None
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
