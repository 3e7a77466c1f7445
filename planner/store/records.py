"""Plain values returned by the store: frozen dataclasses, never ORM objects.

Handing out plain values means no caller can trigger lazy loads on a closed session or hold a
connection by accident, and the API layer can be tested with hand-made records.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from enum import StrEnum
from typing import Any

#: Every scope an API key can have. Keys made before scopes existed have all of them.
SCOPES: tuple[str, ...] = (
    "plans:read",
    "plans:write",
    "feeds:manage",
    "webhooks:manage",
    "admin",
)


@dataclass(frozen=True, slots=True)
class ApiKey:
    """An API key as the service sees it; the secret itself is never stored or returned.

    ``scopes`` say what the key may do (a subset of :data:`SCOPES`, in that order).
    """

    id: int
    name: str
    organisation: str
    prefix: str
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None
    scopes: tuple[str, ...] = SCOPES

    @property
    def active(self) -> bool:
        """Whether the key may still authenticate."""
        return self.revoked_at is None

    def allows(self, scope: str) -> bool:
        """Whether the key has ``scope``; ``admin`` allows everything.

        >>> ApiKey(1, "ci", "acme", "p", None, None, None, ("plans:read",)).allows("plans:write")
        False
        """
        return scope in self.scopes or "admin" in self.scopes


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
    * ``state`` is the current revision's domain plan encoded by ``planner.service.state``, a
      cache of the event log that the next write resumes from. Only
      :meth:`Store.get_plan_with_state` loads it (``None`` everywhere else, and ``None``
      written means "replay next time"); it takes no part in equality.
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
    state: bytes | None = field(default=None, repr=False, compare=False)


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


# -- webhooks ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class WebhookRecord:
    """A webhook subscription. ``secret`` is ``whsec_`` + base64 of the signing key.

    ``previous_secret`` still signs (next to ``secret``) until
    ``previous_secret_expires_at``; ``disabled_at`` is set once the receiver answered
    ``410 Gone``.
    """

    id: str
    organisation: str
    url: str
    event_types: tuple[str, ...]
    secret: str = field(repr=False)
    previous_secret: str | None = field(repr=False)
    previous_secret_expires_at: datetime | None
    created_at: datetime
    disabled_at: datetime | None

    @property
    def enabled(self) -> bool:
        return self.disabled_at is None

    def signing_secrets(self, now: datetime) -> tuple[str, ...]:
        """The secrets that sign a message sent at ``now`` (current first)."""
        if (
            self.previous_secret is not None
            and self.previous_secret_expires_at is not None
            and now < self.previous_secret_expires_at
        ):
            return (self.secret, self.previous_secret)
        return (self.secret,)


class DeliveryState(StrEnum):
    """Where an outbox row stands: waiting (or being tried), delivered, or given up."""

    PENDING = "pending"
    DELIVERED = "delivered"
    FAILED = "failed"


@dataclass(frozen=True, slots=True)
class OutboxEvent:
    """An event to announce to the organisation's webhooks (one outbox row per subscriber).

    Pass these to :meth:`Store.add_plan`/:meth:`Store.update_plan` (``outbox=``) so the
    rows are written in the same transaction as the change they announce, or to
    :meth:`Store.enqueue_webhook_events` on their own. ``occurred_at`` becomes the rows'
    ``created_at`` and the body's ``timestamp``.
    """

    organisation: str
    event_type: str
    payload: dict[str, Any]
    occurred_at: datetime


@dataclass(frozen=True, slots=True)
class DeliveryRecord:
    """One outbox row: an event for one webhook and how delivering it has gone so far.

    ``id`` is the message's ``webhook-id``. ``attempts`` counts the times a worker took it;
    ``last_status`` is the receiver's last HTTP status (``None``: no answer, see
    ``last_error``).
    """

    id: str
    webhook_id: str
    organisation: str
    event_type: str
    payload: dict[str, Any]
    created_at: datetime
    attempts: int
    next_attempt_at: datetime
    delivered_at: datetime | None
    last_status: int | None
    last_error: str | None
    gave_up_at: datetime | None
    replayed_at: datetime | None = None

    @property
    def state(self) -> DeliveryState:
        if self.delivered_at is not None:
            return DeliveryState.DELIVERED
        if self.gave_up_at is not None:
            return DeliveryState.FAILED
        return DeliveryState.PENDING


@dataclass(frozen=True, slots=True)
class ClaimedDelivery:
    """A due outbox row a worker has taken, with what it needs to send it.

    ``lease_until`` is both the lease's end and its token: the worker's result is only
    recorded while the row still carries it (see :meth:`Store.finish_delivery`).
    """

    delivery: DeliveryRecord
    webhook: WebhookRecord
    lease_until: datetime


# -- idempotency keys --------------------------------------------------------------------


class ClaimState(StrEnum):
    """The answer to :meth:`Store.claim_idempotency`."""

    #: The caller owns the key: run the request, then ``complete_idempotency`` (or
    #: ``release_idempotency`` if it failed and should not be replayed).
    NEW = "new"
    #: The request was made before: answer with ``Claim.response``.
    REPLAY = "replay"
    #: The key was used with a different request body (HTTP 422).
    MISMATCH = "mismatch"
    #: Another request with this key is still running (HTTP 409).
    IN_PROGRESS = "in_progress"


@dataclass(frozen=True, slots=True)
class StoredResponse:
    """The response kept for an idempotency key: status, a few headers and the body."""

    status: int
    headers: Mapping[str, str]
    body: bytes
    created_at: datetime


@dataclass(frozen=True, slots=True)
class Claim:
    """The outcome of claiming an idempotency key; pass it back to complete or release it.

    ``claimed_at`` identifies the placeholder this claim inserted (``NEW`` only), so a
    claim that was taken over after going stale cannot complete someone else's.
    """

    state: ClaimState
    organisation: str
    key: str
    method: str
    path: str
    fingerprint: str
    claimed_at: datetime | None = None
    response: StoredResponse | None = None


@dataclass(frozen=True, slots=True)
class PlanDocument:
    """What serving a plan's JSON needs — the stored document, feed settings and the
    feed tokens its links name — without the request, snapshot and calendars."""

    id: str
    revision: int
    document: bytes
    settings: dict[str, Any] | None
    feed_token: str | None = field(repr=False)
    busy_token: str | None = field(repr=False)


@dataclass(frozen=True, slots=True)
class FeedHead:
    """What a feed request needs before it knows whether to send the body: who, which
    feed, the stored token and the validators — a few columns, not the whole plan."""

    plan_id: str
    organisation: str
    revision: int
    kind: str  # "full" or "busy"
    token: str | None = field(repr=False)
    etag: str | None
    last_modified: datetime
    feed_expires_at: datetime | None
    body: bytes | None = field(default=None, repr=False)  # only when asked for
