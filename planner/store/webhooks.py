"""Webhooks: subscriptions, and the outbox of their deliveries.

A delivery is an outbox row written in the same transaction as the change it announces
(see :func:`planner.store.base._add_outbox_rows`); workers claim due rows with a lease,
record how the attempt went, and old finished rows are purged. Sending is not done here.
"""

from __future__ import annotations

import base64
import secrets
import uuid
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, func, or_, select, update
from sqlalchemy.orm import Session

from planner.store.base import (
    StoreBase,
    _add_outbox_rows,
    _by_name,
    _checked_text,
    _field_names,
    _rows_changed,
    _unwrapped_value_errors,
)
from planner.store.models import WebhookOutboxRow, WebhookRow
from planner.store.records import (
    ClaimedDelivery,
    DeliveryRecord,
    DeliveryState,
    OutboxEvent,
    WebhookRecord,
)

#: Webhook signing secrets: "whsec_" + base64 of this many random bytes (Standard Webhooks
#: asks for 24 to 64).
WEBHOOK_SECRET_SCHEME = "whsec_"
WEBHOOK_SECRET_BYTES = 32
_MAX_URL_LENGTH = 2000
_MAX_EVENT_TYPE_LENGTH = 64
_MAX_ERROR_LENGTH = 1000


def new_webhook_secret() -> str:
    """A new webhook signing secret in the Standard Webhooks form, ``whsec_<base64>``."""
    key = secrets.token_bytes(WEBHOOK_SECRET_BYTES)
    return WEBHOOK_SECRET_SCHEME + base64.b64encode(key).decode("ascii")


def _checked_url(url: str) -> str:
    url = url.strip()
    if not url:
        raise ValueError("url must not be empty")
    if len(url) > _MAX_URL_LENGTH:
        raise ValueError(f"url must be at most {_MAX_URL_LENGTH} characters")
    return url


def _checked_event_types(event_types: Iterable[str]) -> list[str]:
    if isinstance(event_types, str):
        raise TypeError("event_types must be a list of event types, not a string")
    chosen = list(dict.fromkeys(event_types))  # without repeats, in the given order
    if not chosen:
        raise ValueError("a webhook needs at least one event type")
    for event_type in chosen:
        if not isinstance(event_type, str) or not event_type:
            raise ValueError(f"not an event type: {event_type!r}")
        if len(event_type) > _MAX_EVENT_TYPE_LENGTH:
            raise ValueError(f"event types are at most {_MAX_EVENT_TYPE_LENGTH} characters")
    return chosen


def _own_webhook(session: Session, organisation: str, webhook_id: str) -> WebhookRow | None:
    return session.scalars(
        select(WebhookRow).where(
            WebhookRow.id == webhook_id, WebhookRow.organisation == organisation
        )
    ).one_or_none()


def _state_conditions(state: DeliveryState) -> list[Any]:
    if state is DeliveryState.DELIVERED:
        return [WebhookOutboxRow.delivered_at.is_not(None)]
    if state is DeliveryState.FAILED:
        return [WebhookOutboxRow.delivered_at.is_(None), WebhookOutboxRow.gave_up_at.is_not(None)]
    return [WebhookOutboxRow.delivered_at.is_(None), WebhookOutboxRow.gave_up_at.is_(None)]


_WEBHOOK_FIELDS = _field_names(WebhookRecord)
_DELIVERY_FIELDS = _field_names(DeliveryRecord)


def _webhook_record(row: WebhookRow) -> WebhookRecord:
    return _by_name(row, WebhookRecord, _WEBHOOK_FIELDS, event_types=tuple(row.event_types))


def _delivery_record(row: WebhookOutboxRow) -> DeliveryRecord:
    return _by_name(row, DeliveryRecord, _DELIVERY_FIELDS)


class WebhookStore(StoreBase):
    """The webhooks and outbox part of the :class:`~planner.store.Store`."""

    def create_webhook(
        self,
        organisation: str,
        url: str,
        event_types: Iterable[str],
        *,
        secret: str | None = None,
    ) -> WebhookRecord:
        """Subscribe ``url`` to ``event_types`` for ``organisation``; return it with its secret.

        The store only checks sizes; what a valid URL or event type is (and whether the URL
        may point at a private address) is ``planner.service.delivery``' business. ``secret``
        defaults to a new ``whsec_`` secret.
        """
        row = WebhookRow(
            id=str(uuid.uuid4()),
            organisation=_checked_text(organisation, "organisation"),
            url=_checked_url(url),
            event_types=_checked_event_types(event_types),
            secret=secret or new_webhook_secret(),
            previous_secret=None,
            previous_secret_expires_at=None,
            created_at=self._now(),
            disabled_at=None,
        )
        with self._sessions.begin() as session:
            session.add(row)
            return _webhook_record(row)

    def list_webhooks(self, organisation: str) -> list[WebhookRecord]:
        """Return ``organisation``'s webhooks, oldest first."""
        with self._sessions.begin() as session:
            rows = session.scalars(
                select(WebhookRow)
                .where(WebhookRow.organisation == organisation)
                .order_by(WebhookRow.created_at, WebhookRow.id)
            )
            return [_webhook_record(row) for row in rows]

    def get_webhook(self, organisation: str, webhook_id: str) -> WebhookRecord | None:
        """Return the webhook if it belongs to ``organisation`` (else ``None``, like missing)."""
        with self._sessions.begin() as session:
            row = _own_webhook(session, organisation, webhook_id)
            return None if row is None else _webhook_record(row)

    def delete_webhook(self, organisation: str, webhook_id: str) -> bool:
        """Delete the webhook and its outbox rows (pending deliveries are dropped)."""
        with self._sessions.begin() as session:
            changed = _rows_changed(
                session,
                delete(WebhookRow).where(
                    WebhookRow.id == webhook_id, WebhookRow.organisation == organisation
                ),
            )
            return changed == 1

    def rotate_webhook_secret(
        self,
        organisation: str,
        webhook_id: str,
        *,
        keep_previous_for: timedelta = timedelta(hours=24),
    ) -> WebhookRecord | None:
        """Give the webhook a new secret; the old one keeps signing for ``keep_previous_for``.

        Messages are signed with both secrets meanwhile (Standard Webhooks: a space-separated
        list of signatures), so the receiver can switch without losing a message. A zero
        ``keep_previous_for`` retires the old secret at once. ``None``: no such webhook.
        """
        if keep_previous_for < timedelta(0):
            raise ValueError("keep_previous_for must not be negative")
        now = self._now()
        keep = keep_previous_for > timedelta(0)
        with self._sessions.begin() as session:
            changed = _rows_changed(
                session,
                update(WebhookRow)
                .where(WebhookRow.id == webhook_id, WebhookRow.organisation == organisation)
                .values(
                    # The right-hand side sees the row as it was: the outgoing secret.
                    previous_secret=WebhookRow.secret if keep else None,
                    previous_secret_expires_at=now + keep_previous_for if keep else None,
                    secret=new_webhook_secret(),
                ),
            )
            if changed != 1:
                return None
            row = _own_webhook(session, organisation, webhook_id)
            assert row is not None
            return _webhook_record(row)

    def disable_webhook(self, webhook_id: str) -> bool:
        """Stop new deliveries to a webhook (its receiver answered ``410 Gone``)."""
        with self._sessions.begin() as session:
            changed = _rows_changed(
                session,
                update(WebhookRow)
                .where(WebhookRow.id == webhook_id, WebhookRow.disabled_at.is_(None))
                .values(disabled_at=self._now()),
            )
            return changed == 1

    # -- webhook outbox --------------------------------------------------------------------

    def enqueue_webhook_events(self, events: Sequence[OutboxEvent]) -> list[str]:
        """Write the outbox rows for ``events`` in one transaction; return their ids.

        One row per enabled webhook of the event's organisation that subscribes to its type
        (none at all is fine). To announce a plan change, prefer ``outbox=`` on
        :meth:`add_plan`/:meth:`update_plan`, which writes the rows with the change.
        """
        with _unwrapped_value_errors(), self._sessions.begin() as session:
            return _add_outbox_rows(session, events)

    def claim_due_delivery(self, now: datetime, *, lease: timedelta) -> ClaimedDelivery | None:
        """Take the outbox row that has been due longest, for ``lease``; ``None``: none due.

        One statement both picks and claims it: ``UPDATE ... WHERE id = (SELECT ... FOR
        UPDATE SKIP LOCKED LIMIT 1) RETURNING id``. On PostgreSQL concurrent workers skip
        each other's locked rows; SQLite drops the ``FOR UPDATE`` and runs the statement
        under its single write lock, so the pick cannot race. It must be ``=`` on a scalar
        subquery, run once: PostgreSQL plans ``id IN (subquery)`` as a semi-join that
        re-runs the subquery for every due row, and each run locks and returns the next
        one, so a single claim would take every due row. Claiming moves
        ``next_attempt_at`` to ``now + lease`` (no other worker sees the row as due until
        the lease runs out, e.g. because this worker died) and counts an attempt.
        """
        if lease <= timedelta(0):
            raise ValueError("the lease must be positive")
        lease_until = now + lease
        due = (
            WebhookOutboxRow.delivered_at.is_(None),
            WebhookOutboxRow.gave_up_at.is_(None),
            WebhookOutboxRow.next_attempt_at <= now,
        )
        candidate = (
            select(WebhookOutboxRow.id)
            .where(*due)
            .order_by(WebhookOutboxRow.next_attempt_at, WebhookOutboxRow.id)
            .limit(1)
            .with_for_update(skip_locked=True)
        )
        with _unwrapped_value_errors(), self._sessions.begin() as session:
            # A plain read first: an idle poll must not take SQLite's write lock.
            if session.scalar(select(WebhookOutboxRow.id).where(*due).limit(1)) is None:
                return None
            claimed = session.execute(
                update(WebhookOutboxRow)
                .where(WebhookOutboxRow.id == candidate.scalar_subquery(), *due)
                .values(next_attempt_at=lease_until, attempts=WebhookOutboxRow.attempts + 1)
                .returning(WebhookOutboxRow.id)
                .execution_options(synchronize_session=False)
            ).scalar_one_or_none()
            if claimed is None:
                return None
            row = session.get(WebhookOutboxRow, claimed)
            assert row is not None
            webhook = session.get(WebhookRow, row.webhook_id)
            assert webhook is not None  # the foreign key cascades deletes
            return ClaimedDelivery(
                delivery=_delivery_record(row),
                webhook=_webhook_record(webhook),
                lease_until=lease_until,
            )

    def finish_delivery(
        self,
        delivery_id: str,
        lease_until: datetime,
        *,
        status: int | None,
        error: str | None = None,
        delivered_at: datetime | None = None,
        retry_at: datetime | None = None,
        gave_up_at: datetime | None = None,
    ) -> bool:
        """Record how a claimed attempt went: delivered, retry later, or given up.

        Exactly one of ``delivered_at``, ``retry_at`` and ``gave_up_at`` is given. The
        result is recorded only while the row still carries this claim's ``lease_until``;
        ``False`` means the lease was lost (it ran out and another worker took the row, the
        row was replayed, or the webhook was deleted) and nothing was written.
        """
        if sum(value is not None for value in (delivered_at, retry_at, gave_up_at)) != 1:
            raise ValueError("give exactly one of delivered_at, retry_at, gave_up_at")
        values: dict[str, Any] = {
            "last_status": status,
            "last_error": None if error is None else error[:_MAX_ERROR_LENGTH],
        }
        if delivered_at is not None:
            values["delivered_at"] = delivered_at
        elif gave_up_at is not None:
            values["gave_up_at"] = gave_up_at
        else:
            values["next_attempt_at"] = retry_at
        with _unwrapped_value_errors(), self._sessions.begin() as session:
            changed = _rows_changed(
                session,
                update(WebhookOutboxRow)
                .where(
                    WebhookOutboxRow.id == delivery_id,
                    WebhookOutboxRow.next_attempt_at == lease_until,
                    WebhookOutboxRow.delivered_at.is_(None),
                    WebhookOutboxRow.gave_up_at.is_(None),
                )
                .values(values),
            )
            return changed == 1

    def list_deliveries(
        self,
        organisation: str,
        webhook_id: str,
        *,
        limit: int,
        offset: int,
        state: DeliveryState | str | None = None,
    ) -> tuple[list[DeliveryRecord], int]:
        """One page of a webhook's outbox rows, newest first, and their total count."""
        if limit < 0 or offset < 0:
            raise ValueError("limit and offset must not be negative")
        conditions: list[Any] = [
            WebhookOutboxRow.webhook_id == webhook_id,
            WebhookOutboxRow.organisation == organisation,
        ]
        if state is not None:
            conditions.extend(_state_conditions(DeliveryState(state)))
        with self._sessions.begin() as session:
            total = session.scalar(
                select(func.count()).select_from(WebhookOutboxRow).where(*conditions)
            )
            rows = session.scalars(
                select(WebhookOutboxRow)
                .where(*conditions)
                .order_by(WebhookOutboxRow.created_at.desc(), WebhookOutboxRow.id.desc())
                .limit(limit)
                .offset(offset)
            )
            return [_delivery_record(row) for row in rows], total or 0

    def get_delivery(
        self, organisation: str, webhook_id: str, delivery_id: str
    ) -> DeliveryRecord | None:
        """One outbox row of ``organisation``'s webhook, or ``None``."""
        with self._sessions.begin() as session:
            row = session.scalars(
                select(WebhookOutboxRow).where(
                    WebhookOutboxRow.id == delivery_id,
                    WebhookOutboxRow.webhook_id == webhook_id,
                    WebhookOutboxRow.organisation == organisation,
                )
            ).one_or_none()
            return None if row is None else _delivery_record(row)

    def replay_delivery(
        self, organisation: str, webhook_id: str, delivery_id: str
    ) -> DeliveryRecord | None:
        """Queue an outbox row again, due now, with a fresh retry window.

        The message keeps its id (``webhook-id``), so a receiver that did process it can
        recognise the repeat. Delivered, given-up and pending rows alike can be replayed;
        a worker still sending the row loses its lease (its result is not recorded).
        ``None``: no such delivery for this webhook and organisation.
        """
        now = self._now()
        with self._sessions.begin() as session:
            changed = _rows_changed(
                session,
                update(WebhookOutboxRow)
                .where(
                    WebhookOutboxRow.id == delivery_id,
                    WebhookOutboxRow.webhook_id == webhook_id,
                    WebhookOutboxRow.organisation == organisation,
                )
                .values(
                    delivered_at=None,
                    gave_up_at=None,
                    next_attempt_at=now,
                    replayed_at=now,
                ),
            )
            if changed != 1:
                return None
            row = session.get(WebhookOutboxRow, delivery_id)
            assert row is not None
            return _delivery_record(row)

    def purge_outbox(self, older_than: datetime) -> int:
        """Delete delivered and given-up outbox rows created (and replayed) before
        ``older_than``; pending rows are never purged. Returns how many went."""
        with _unwrapped_value_errors(), self._sessions.begin() as session:
            changed = _rows_changed(
                session,
                delete(WebhookOutboxRow).where(
                    or_(
                        WebhookOutboxRow.delivered_at.is_not(None),
                        WebhookOutboxRow.gave_up_at.is_not(None),
                    ),
                    WebhookOutboxRow.created_at < older_than,
                    or_(
                        WebhookOutboxRow.replayed_at.is_(None),
                        WebhookOutboxRow.replayed_at < older_than,
                    ),
                ),
            )
            return changed
