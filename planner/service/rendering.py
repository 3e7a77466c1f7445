"""Rendering a revision once, and serving what was rendered.

Every write renders the new revision — its JSON and both calendars — and stores the
bytes, so reads, above all feed polling, serve bytes and never re-plan. Which exporters
render is a setting (``PLANNER_EXPORTERS``): the fast writers by default, or their
references (marshmallow, icalendar) to measure what the fast ones save.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from planner import __version__, links
from planner.domain.model import Plan, PlanStatus
from planner.export import FAST_EXPORTERS, Exporters, to_ical, to_json
from planner.schemas.api import FeedSettingsSchema
from planner.service import state
from planner.service.requests import request_document
from planner.store import PlanDocument, PlanRecord, strong_etag
from planner.store import hash_secret as token_hash  # feeds are looked up by token hash

log = logging.getLogger(__name__)

_FEED_SETTINGS = FeedSettingsSchema()
#: What a plan's calendars show when its request says nothing.
DEFAULT_FEED_SETTINGS: dict[str, Any] = _FEED_SETTINGS.load({})
#: ``FeedSettingsSchema().dump`` compiled once (every plan read dumps the settings: ~40 µs
#: by marshmallow, a few by the compiled dumper; a test holds them equal).
dump_feed_settings = to_json.compile_dumper(_FEED_SETTINGS)


@dataclass(frozen=True, slots=True)
class Feed:
    """A plan's calendar feeds: what they show, the capability tokens that serve them,
    and until when cancelled sessions stay in them (``None``: no such window)."""

    settings: Mapping[str, Any]
    token: str | None
    busy_token: str | None
    cancelled_until: datetime | None = None

    @classmethod
    def of(cls, record: PlanRecord) -> Feed:
        return cls(
            settings=record.settings,
            token=record.feed_token,
            busy_token=record.busy_token,
            cancelled_until=record.feed_expires_at,
        )


def shows_cancelled(plan: Plan, feed: Feed, now: datetime) -> bool:
    """Whether the calendars keep cancelled sessions (as ``STATUS:CANCELLED``, so that
    subscribed calendars update them in place): always while the plan is active, and
    for the window after it ended — then never again, whatever is written later."""
    if plan.status is PlanStatus.ACTIVE:
        return True
    return feed.cancelled_until is not None and now < feed.cancelled_until


def with_feed_last_modified(
    previous: PlanRecord, rendered: PlanRecord, now: datetime
) -> PlanRecord:
    """``rendered`` with the feeds' ``Last-Modified``: unchanged while their bytes are
    (a confirmation or a token rotation gives clients nothing new to fetch), otherwise
    strictly later than before — HTTP dates have whole seconds, so a change within the
    second of the last one would read as not modified — and never before ``now``."""
    before = previous.last_modified or previous.updated_at
    if rendered.ics == previous.ics and rendered.busy_ics == previous.busy_ics:
        return replace(rendered, last_modified=before)
    later = (before + _ONE_SECOND).replace(microsecond=0)
    return replace(rendered, last_modified=max(now, later))


_ONE_SECOND = timedelta(seconds=1)


def feed_options(
    settings: Mapping[str, Any], *, show_cancelled: bool = True
) -> to_ical.FeedOptions:
    return to_ical.FeedOptions(
        detail=settings.get("detail", "activity"),
        reminder_minutes=settings.get("reminder_minutes"),
        show_cancelled=show_cancelled,
    )


def render_record(
    plan: Plan,
    organisation: str,
    *,
    feed: Feed,
    snapshot: Mapping[str, Any],
    last_modified: datetime,
    show_cancelled: bool = True,
    confirmed_at: datetime | None = None,
    request: Mapping[str, Any] | None = None,
    plan_state: bytes | None = None,
    exporters: Exporters = FAST_EXPORTERS,
) -> PlanRecord:
    """Render the revision once — JSON and iCalendar bytes — so reads serve bytes.

    ``request``: the plan's request document when the caller has it already (it never
    changes between revisions); ``plan_state``: :func:`encode_state` of ``plan``.
    """
    options = feed_options(feed.settings, show_cancelled=show_cancelled)
    ics = exporters.calendar(plan, options)
    busy_ics = exporters.calendar(plan, replace(options, busy=True)) if feed.busy_token else None
    return PlanRecord(
        id=plan.id,
        organisation=organisation,
        revision=plan.revision,
        status=plan.status.value,
        created_at=plan.created_at,
        updated_at=plan.updated_at,
        athlete_reference=plan.request.athlete.reference,
        protocol_id=plan.protocol.id,
        protocol_version=plan.protocol.version,
        request=request_document(plan) if request is None else dict(request),
        document=exporters.plan_json(plan),
        ics=ics,
        etag=strong_etag(ics),
        feed_token=feed.token,
        feed_token_hash=token_hash(feed.token) if feed.token else None,
        busy_token=feed.busy_token,
        busy_token_hash=token_hash(feed.busy_token) if feed.busy_token else None,
        busy_ics=busy_ics,
        busy_etag=strong_etag(busy_ics) if busy_ics else None,
        last_modified=last_modified,
        feed_expires_at=feed.cancelled_until,
        settings=dict(feed.settings),
        protocol_snapshot=dict(snapshot),
        confirmed_at=confirmed_at,
        state=plan_state,
    )


def encode_state(plan: Plan) -> bytes | None:
    """The plan's state blob, or ``None`` (the next write replays) if it cannot be encoded:
    the state is only a cache, so it never fails a write."""
    try:
        return state.encode(plan)
    except Exception:
        log.warning("plan %s: state not encodable, stored without it", plan.id, exc_info=True)
        return None


def plan_links(record: PlanRecord | PlanDocument, base_url: str | None = None) -> dict[str, Any]:
    """Where the plan lives; feed URLs only while their tokens exist (absolute under
    ``base_url``, the deployment's public origin, when it has one)."""
    return links.plan_links(record.id, record.feed_token, record.busy_token, base_url=base_url)


def served_tail(
    record: PlanRecord | PlanDocument, base_url: str | None = None
) -> tuple[bytes, str]:
    """What serving adds to the stored document (feed settings, links absolute under
    ``base_url``) and the strong ETag of the served JSON — without building the body.

    A revision's stored document never changes (every write that changes it makes a new
    revision), so the ETag hashes what names it — plan, revision, this service's version
    (which fixes how a document is served) — plus the part added on serving, instead of
    the ~70 KB document on every read. Two different bodies never share an ETag.
    """
    settings = dump_feed_settings(record.settings or DEFAULT_FEED_SETTINGS)
    tail = to_json.served_tail(settings, plan_links(record, base_url))
    named = f"{record.id}/{record.revision}/{__version__}/".encode()
    return tail, strong_etag(named + tail)


def served_body(record: PlanRecord | PlanDocument, tail: bytes) -> bytes:
    """The served plan JSON: the stored document with :func:`served_tail`'s tail."""
    return to_json.splice(record.document, tail)


def served(record: PlanRecord | PlanDocument, base_url: str | None = None) -> tuple[bytes, str]:
    """The served plan JSON and its strong ETag (see :func:`served_tail`)."""
    tail, etag = served_tail(record, base_url)
    return served_body(record, tail), etag


__all__ = [
    "DEFAULT_FEED_SETTINGS",
    "Feed",
    "dump_feed_settings",
    "encode_state",
    "feed_options",
    "plan_links",
    "render_record",
    "served",
    "served_body",
    "served_tail",
    "shows_cancelled",
    "token_hash",
    "with_feed_last_modified",
]
