"""Conditional GET (RFC 9110 §13), without a request object.

Both ways a feed is served — the WSGI fast path and the Flask view — decide "304 or 200"
and build the validators here, so they cannot drift apart; plan GETs use
:func:`none_match` too.
"""

from __future__ import annotations

from datetime import datetime

from werkzeug.http import http_date, parse_date

from planner.store import FeedHead

ICAL_CONTENT_TYPE = "text/calendar; charset=utf-8"
FEED_CACHE_CONTROL = "no-cache"  # caches may keep it, but must revalidate by ETag


def not_modified(
    etag: str, last_modified: datetime, if_none_match: str | None, if_modified_since: str | None
) -> bool:
    """``If-None-Match``, when present, decides alone; otherwise ``If-Modified-Since``,
    and an unparseable date is ignored (RFC 9110 §13.2.2)."""
    if if_none_match is not None:
        return none_match(etag, if_none_match)
    since = parse_date(if_modified_since)
    return since is not None and last_modified.replace(microsecond=0) <= since


def none_match(etag: str, if_none_match: str) -> bool:
    """Whether ``If-None-Match`` names ``etag`` (weak comparison, as GET asks) or is ``*``."""
    tags = [t.strip().removeprefix("W/") for t in if_none_match.split(",")]
    return "*" in tags or etag in tags


def validators(head: FeedHead) -> list[tuple[str, str]]:
    """The headers a feed answer carries on a 200 and a 304 alike: a client revalidating
    by date needs ``Last-Modified`` on the 304 too."""
    assert head.etag is not None
    return [
        ("ETag", head.etag),
        ("Last-Modified", http_date(head.last_modified)),
        ("Cache-Control", FEED_CACHE_CONTROL),
    ]
