"""Conditional GET (RFC 9110 §13) on Werkzeug's ETag helpers, and the one feed answer.

Both ways a feed is served — the WSGI fast path and the Flask view — take their "304 or
200" and their validators from :func:`feed_answer`, so they cannot drift apart; plan GETs
and ``If-Match`` preconditions use :func:`none_match` and :func:`if_match` the same way.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from werkzeug.http import http_date, parse_etags, unquote_etag
from werkzeug.sansio.http import is_resource_modified

from planner.service import FeedHead, Planner

ICAL_CONTENT_TYPE = "text/calendar; charset=utf-8"
FEED_CACHE_CONTROL = "no-cache"  # caches may keep it, but must revalidate by ETag


def none_match(etag: str, if_none_match: str) -> bool:
    """Whether ``If-None-Match`` names ``etag`` (weak comparison, as GET asks) or is ``*``."""
    return parse_etags(if_none_match).contains_weak(unquote_etag(etag)[0])


def if_match(header: str) -> Callable[[str], bool]:
    """``If-Match`` as a precondition on the plan's current ETag: ``*`` or one of the
    strong ETags it lists (RFC 9110 §13.1.1: strong comparison)."""
    etags = parse_etags(header)
    return lambda etag: etags.contains(unquote_etag(etag)[0])


def validators(head: FeedHead) -> list[tuple[str, str]]:
    """The headers a feed answer carries on a 200 and a 304 alike: a client revalidating
    by date needs ``Last-Modified`` on the 304 too."""
    assert head.etag is not None
    return [
        ("ETag", head.etag),
        ("Last-Modified", http_date(head.last_modified)),
        ("Cache-Control", FEED_CACHE_CONTROL),
    ]


@dataclass(frozen=True, slots=True)
class FeedAnswer:
    """A feed poll's answer: 200 with the calendar, or 304; ``headers`` are the validators."""

    status: int
    headers: list[tuple[str, str]]
    body: bytes = b""


def feed_answer(
    planner: Planner,
    token: str,
    *,
    if_none_match: str | None,
    if_modified_since: str | None,
    rerender: bool,
) -> FeedAnswer | None:
    """Answer a poll of the feed ``token`` names; ``None``: nothing to serve from here.

    ``If-None-Match``, when present, decides alone; otherwise ``If-Modified-Since`` (an
    unparseable date is ignored). A conditional poll reads a few columns and, on a 304,
    nothing more. ``rerender``: drop cancelled sessions whose window ended first (the
    app); without it, a feed due for that is left to the app (the fast path).
    """
    conditional = if_none_match is not None or if_modified_since is not None
    if rerender:
        head: FeedHead | None = planner.feed_head(token, body=not conditional)
    else:
        head = planner.current_feed_head(token, body=not conditional)
    if head is None or head.etag is None:
        return None
    headers = validators(head)
    if conditional and not is_resource_modified(
        http_if_none_match=if_none_match,
        http_if_modified_since=if_modified_since,
        etag=head.etag,
        last_modified=head.last_modified,
    ):
        return FeedAnswer(304, headers)
    return FeedAnswer(200, headers, planner.feed_body(head))
