"""Every URL shape the service hands out, in one place.

Plans link to their feeds and page, webhook messages link to their plan, the revision
history links to each revision, and the routes and the WSGI fast path match the same
prefixes: when a shape lives here only, a route cannot move without its links moving too.
Paths are relative; the web layer makes them absolute where a client needs that.
"""

from __future__ import annotations

from typing import Any

#: Where plans live under the versioned API.
PLANS = "/v1/plans"
#: Where organisation webhooks live.
WEBHOOKS = "/v1/webhooks"
#: Where protocols live.
PROTOCOLS = "/v1/protocols"
#: Public calendar feeds: the token is the capability.
FEEDS = "/feeds"
#: The runner's page: the same capability as the full feed.
PAGES = "/p"
CALENDAR_SUFFIX = ".ics"


def plan(plan_id: str) -> str:
    return f"{PLANS}/{plan_id}"


def plan_calendar(plan_id: str) -> str:
    return f"{PLANS}/{plan_id}{CALENDAR_SUFFIX}"


def plan_revision(plan_id: str, revision: int) -> str:
    return f"{PLANS}/{plan_id}?revision={revision}"


def feed(token: str) -> str:
    return f"{FEEDS}/{token}{CALENDAR_SUFFIX}"


def page(token: str) -> str:
    return f"{PAGES}/{token}"


def plan_links(
    plan_id: str,
    feed_token: str | None,
    busy_token: str | None,
    *,
    base_url: str | None = None,
) -> dict[str, Any]:
    """Where a plan lives; feed URLs only while their tokens exist. With ``base_url`` (the
    deployment's public origin) the feed and page links are absolute: they are what a
    runner pastes into a calendar or opens on a phone, away from the API."""
    origin = base_url.rstrip("/") if base_url else ""
    return {
        "self": plan(plan_id),
        "ical": plan_calendar(plan_id),
        "feed": origin + feed(feed_token) if feed_token else None,
        "busy_feed": origin + feed(busy_token) if busy_token else None,
        "page": origin + page(feed_token) if feed_token else None,
    }
