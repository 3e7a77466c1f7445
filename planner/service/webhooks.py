"""Webhooks: an organisation's subscriptions, and which events a plan write announces.

Events reach receivers through a transactional outbox: a write passes the events it
announces to the store call that makes the change (``Store.add_plan(..., outbox=...)``,
``Store.update_plan(..., outbox=...)``), which writes one row per subscribed webhook *in
the same transaction*, so an event is stored if and only if its change is. Sending them is
:mod:`planner.service.delivery`.

What a write announces is read from the domain — the plan before and after, and the
check-in's decision — not from the rendered documents.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from planner import links
from planner.domain.model import Plan, PlanStatus, Severity
from planner.domain.progress import Decision
from planner.service.base import ServiceBase
from planner.service.delivery import InvalidWebhookUrl, check_url
from planner.service.errors import (
    DeliveryNotFound,
    InvalidWebhook,
    WebhookDisabled,
    WebhookNotFound,
)
from planner.store import DeliveryRecord, OutboxEvent, Store, WebhookRecord

#: The event types a webhook can subscribe to.
EVENT_TYPES: tuple[str, ...] = (
    "plan.created",
    "plan.revised",
    "plan.cancelled",
    "checkin.recorded",
    "alert.raised",
)
#: Alerts worth a message of their own; ``info`` ones are in the plan for whoever reads it.
_ANNOUNCED_SEVERITIES = frozenset({Severity.URGENT, Severity.WARNING})


def _checked_event_type(event_type: str) -> str:
    if event_type not in EVENT_TYPES:
        raise ValueError(f"unknown event type {event_type!r} (known: {', '.join(EVENT_TYPES)})")
    return event_type


def outbox_rows(
    organisation: str, event_type: str, payload: Mapping[str, Any], now: datetime
) -> list[OutboxEvent]:
    """The outbox entry announcing one event, to pass as ``outbox=`` to
    ``Store.add_plan``/``Store.update_plan`` (lists concatenate).

    The store expands it into one row per enabled webhook of ``organisation`` subscribed
    to ``event_type`` *inside the write's transaction*, so subscriptions are read and rows
    written atomically with the change they announce.
    """
    return [
        OutboxEvent(
            organisation=organisation,
            event_type=_checked_event_type(event_type),
            payload=dict(payload),
            occurred_at=now,
        )
    ]


def enqueue(
    store: Store,
    organisation: str,
    event_type: str,
    payload: Mapping[str, Any],
    *,
    now: datetime,
) -> list[str]:
    """Queue one event for every subscribed, enabled webhook on its own; return the row ids.

    For an event that announces a database change, prefer passing :func:`outbox_rows` to
    the store call that makes the change: then the event is stored if and only if the
    change is.
    """
    return store.enqueue_webhook_events(outbox_rows(organisation, event_type, payload, now))


@dataclass(frozen=True, slots=True)
class CheckInRecorded:
    """A check-in a revision records, as its ``checkin.recorded`` message tells it."""

    date: str
    session_uid: str | None
    decision: Decision


def plan_events(
    organisation: str,
    plan: Plan,
    *,
    previous: Plan | None = None,
    kind: str = "created",
    reason: str = "",
    check_in: CheckInRecorded | None = None,
    now: datetime,
) -> list[OutboxEvent]:
    """The webhook events one plan write announces (pass them as ``outbox=``).

    * a new plan (``previous`` is ``None``): ``plan.created``;
    * a new revision: ``plan.cancelled`` when it ended the plan by cancellation, else
      ``plan.revised``; a check-in also gives ``checkin.recorded``;
    * ``alert.raised`` for every alert of severity ``urgent`` or ``warning`` in the new
      revision that the previous one did not have (all such alerts of a new plan).

    Payloads are thin (Standard Webhooks' advice): ids, revision, status, the clinic's
    athlete reference and a link to fetch the rest with an API key; no diagnosis details
    or pain scores.
    """
    base = {
        "plan_id": plan.id,
        "revision": plan.revision,
        "status": plan.status.value,
        "athlete_reference": plan.request.athlete.reference,
        "links": {"plan": links.plan(plan.id)},
    }
    events: list[OutboxEvent] = []
    cancelled = PlanStatus.CANCELLED
    if previous is None:
        created = {**base, "protocol": {"id": plan.protocol.id, "version": plan.protocol.version}}
        events += outbox_rows(organisation, "plan.created", created, now)
    elif kind == "cancel" or (plan.status is cancelled and previous.status is not cancelled):
        events += outbox_rows(organisation, "plan.cancelled", {**base, "reason": reason}, now)
    else:
        revised = {**base, "kind": kind, "reason": reason}
        events += outbox_rows(organisation, "plan.revised", revised, now)
    if check_in is not None:
        decision = check_in.decision
        recorded = {
            **base,
            "date": check_in.date,
            "session_uid": check_in.session_uid or decision.session_uid,
            "decision": {
                "outcome": decision.outcome.value if decision.outcome else None,
                "reason": decision.reason,
            },
        }
        events += outbox_rows(organisation, "checkin.recorded", recorded, now)
    seen = {alert.code for alert in previous.alerts} if previous is not None else set()
    for alert in plan.alerts:
        if alert.severity in _ANNOUNCED_SEVERITIES and alert.code not in seen:
            raised = {
                **base,
                "alert": {
                    "code": alert.code,
                    "severity": alert.severity.value,
                    "message": alert.message,
                },
            }
            events += outbox_rows(organisation, "alert.raised", raised, now)
    return events


class WebhookService(ServiceBase):
    """An organisation's webhook subscriptions and their delivery log."""

    def create_webhook(
        self,
        organisation: str,
        url: str,
        event_types: Sequence[str],
        *,
        allow_private: bool = False,
    ) -> WebhookRecord:
        """Subscribe ``url``: it must be an http(s) URL on a public host, unless
        ``allow_private`` (the deployment's ``WEBHOOKS_ALLOW_PRIVATE``)."""
        try:
            checked = check_url(url.strip(), allow_private=allow_private)
        except InvalidWebhookUrl as exc:
            raise InvalidWebhook("The webhook URL cannot be used.", {"url": [str(exc)]}) from None
        return self.store.create_webhook(organisation, checked, list(event_types))

    def list_webhooks(self, organisation: str) -> list[WebhookRecord]:
        return self.store.list_webhooks(organisation)

    def get_webhook(self, organisation: str, webhook_id: str) -> WebhookRecord:
        record = self.store.get_webhook(organisation, webhook_id)
        if record is None:
            raise WebhookNotFound(f"No webhook {webhook_id!r} in your organisation.")
        return record

    def delete_webhook(self, organisation: str, webhook_id: str) -> None:
        """Nothing more is sent; pending deliveries are dropped."""
        if not self.store.delete_webhook(organisation, webhook_id):
            raise WebhookNotFound(f"No webhook {webhook_id!r} in your organisation.")

    def rotate_webhook_secret(self, organisation: str, webhook_id: str) -> WebhookRecord:
        record = self.store.rotate_webhook_secret(organisation, webhook_id)
        if record is None:
            raise WebhookNotFound(f"No webhook {webhook_id!r} in your organisation.")
        return record

    def list_deliveries(
        self,
        organisation: str,
        webhook_id: str,
        *,
        limit: int,
        offset: int,
        state: str | None = None,
    ) -> tuple[list[DeliveryRecord], int]:
        """One page of a webhook's deliveries, newest first, and how many there are."""
        self.get_webhook(organisation, webhook_id)
        return self.store.list_deliveries(
            organisation, webhook_id, limit=limit, offset=offset, state=state
        )

    def get_delivery(self, organisation: str, webhook_id: str, delivery_id: str) -> DeliveryRecord:
        record = self.store.get_delivery(organisation, webhook_id, delivery_id)
        if record is None:
            raise DeliveryNotFound(f"No delivery {delivery_id!r} for webhook {webhook_id!r}.")
        return record

    def replay_delivery(
        self, organisation: str, webhook_id: str, delivery_id: str
    ) -> DeliveryRecord:
        """Queue a delivery again now, with the same message id and a new retry window."""
        webhook = self.get_webhook(organisation, webhook_id)
        if not webhook.enabled:
            raise WebhookDisabled(
                "The receiver answered 410 Gone and the webhook was disabled: "
                "create a new webhook to receive messages again."
            )
        record = self.store.replay_delivery(organisation, webhook_id, delivery_id)
        if record is None:
            raise DeliveryNotFound(f"No delivery {delivery_id!r} for webhook {webhook_id!r}.")
        return record


__all__ = [
    "EVENT_TYPES",
    "CheckInRecorded",
    "WebhookService",
    "enqueue",
    "outbox_rows",
    "plan_events",
]
