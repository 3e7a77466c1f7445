"""Plain values returned by the store: frozen dataclasses, never ORM objects.

Handing out plain values means no caller can trigger lazy loads on a closed session or hold a
connection by accident, and the API layer can be tested with hand-made records.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any


@dataclass(frozen=True, slots=True)
class ApiKey:
    """An API key as the service sees it; the secret itself is never stored or returned."""

    id: int
    name: str
    organisation: str
    prefix: str
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None

    @property
    def active(self) -> bool:
        """Whether the key may still authenticate."""
        return self.revoked_at is None


@dataclass(frozen=True, slots=True)
class PlanRecord:
    """One stored plan: identity, ownership, bookkeeping and the rendered documents.

    ``request`` is the normalised input document (JSON-compatible), ``document`` the rendered
    plan JSON bytes and ``ics`` the rendered iCalendar bytes; ``etag`` belongs to ``ics``
    (see :func:`strong_etag`). All datetimes are aware UTC.

    The fields after ``etag`` have defaults so that callers written before plan revisions
    keep working:

    * ``feed_token``/``busy_token`` are the calendar feeds' capability tokens, kept in clear
      only so the API can show the feed URLs; lookups go through ``*_hash`` (SHA-256 hex).
    * ``busy_ics``/``busy_etag`` are the rendered opt-in "busy" feed and its entity tag.
    * ``last_modified`` is the feeds' ``Last-Modified``; ``None`` means "same as
      ``updated_at``" and is stored that way, so a loaded record never has ``None`` here.
    * ``feed_expires_at`` is when cancelled events should drop out of the feed.
    * ``settings`` are the feed options, ``protocol_snapshot`` the exact protocol document
      the plan was made from (replays must not depend on a later catalog edit).
    """

    id: str
    organisation: str
    revision: int
    status: str
    created_at: datetime
    updated_at: datetime
    athlete_reference: str | None
    protocol_id: str
    protocol_version: str
    request: dict[str, Any]
    document: bytes
    ics: bytes
    etag: str
    # repr=False: a token is a capability and must not reach logs or tracebacks.
    feed_token: str | None = field(default=None, repr=False)
    feed_token_hash: str | None = None
    busy_token: str | None = field(default=None, repr=False)
    busy_token_hash: str | None = None
    busy_ics: bytes | None = None
    busy_etag: str | None = None
    last_modified: datetime | None = None
    feed_expires_at: datetime | None = None
    settings: dict[str, Any] = field(default_factory=dict)
    protocol_snapshot: dict[str, Any] = field(default_factory=dict)
    confirmed_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class RevisionRecord:
    """One plan revision: why it was made, by which key, and the plan JSON as it was then.

    ``kind`` names what made it (``"created"``, ``"check_in"``, ``"gate"``, ``"cancel"``,
    ``"feed"``, ...); ``key_id`` is ``None`` when no API key was involved (CLI, system).
    """

    plan_id: str
    revision: int
    created_at: datetime
    key_id: int | None
    kind: str
    reason: str
    document: bytes


@dataclass(frozen=True, slots=True)
class EventRecord:
    """One entry of a plan's event log, numbered ``seq`` = 1, 2, ... per plan.

    ``today`` is the plan-local date the event was recorded on (what the rules saw as
    "today"), ``recorded_at`` the UTC instant; ``revision`` is the plan revision the event
    produced. Pass ``seq=0`` to :meth:`Store.update_plan` to take the next number.
    """

    plan_id: str
    seq: int
    kind: str
    today: date
    recorded_at: datetime
    key_id: int | None
    payload: dict[str, Any]
    decision: dict[str, Any] | None
    revision: int


def strong_etag(data: bytes) -> str:
    """Return a strong HTTP entity tag for ``data``.

    Derived from the bytes rather than from a revision number, so identical renderings share
    a tag and any change in the rendered output (even from a renderer fix) changes it.

    >>> strong_etag(b"")
    '"e3b0c44298fc1c149afbf4c8996fb924"'
    """
    return '"' + hashlib.sha256(data).hexdigest()[:32] + '"'
