"""Webhooks: an organisation's subscriptions, their signing secrets and their deliveries.

Messages are sent by ``planner worker`` (or a thread of ``planner serve`` on the embedded
database) from a persistent outbox, signed per Standard Webhooks; see
``planner.service.webhooks`` and ``planner.service.delivery``.
"""

from __future__ import annotations

from typing import Any

from flask import Flask, Response, current_app, jsonify, url_for
from flask.views import MethodView
from flask_smorest import Blueprint
from marshmallow import Schema, fields, validate

from planner import links
from planner.schemas.api import StrictSchema
from planner.service import (
    EVENT_TYPES,
    BackgroundDelivery,
    DeliveryRecord,
    DeliveryState,
    Planner,
    WebhookRecord,
)
from planner.web.api import errors, idempotent
from planner.web.auth import WEBHOOK_SCOPES, current_organisation, protect
from planner.web.common import planner

blp = protect(
    Blueprint(
        "webhooks",
        __name__,
        url_prefix=links.WEBHOOKS,
        description=(
            "Get told when plans change: signed (Standard Webhooks) POSTs to your URL, "
            "retried for 24 hours, with a delivery log and replay. Needs a key with the "
            "`webhooks:manage` scope."
        ),
    ),
    WEBHOOK_SCOPES,
)


# ----------------------------------------------------------------------------- schemas


class WebhookCreateSchema(StrictSchema):
    url = fields.String(
        required=True,
        validate=validate.Length(min=1, max=2000),
        metadata={"description": "Where to POST: an http(s) URL on a public host."},
    )
    event_types = fields.List(
        fields.String(validate=validate.OneOf(EVENT_TYPES)),
        required=True,
        validate=validate.Length(min=1),
        metadata={"description": "Which events to send: " + ", ".join(EVENT_TYPES) + "."},
    )


class WebhookLinksSchema(Schema):
    self = fields.String(required=True)
    deliveries = fields.String(required=True)


class WebhookSchema(Schema):
    id = fields.String(required=True)
    url = fields.String(required=True)
    event_types = fields.List(fields.String(), required=True)
    created_at = fields.DateTime(required=True)
    previous_secret_expires_at = fields.DateTime(
        allow_none=True,
        required=True,
        metadata={"description": "Until then messages carry a signature by the old secret too."},
    )
    disabled_at = fields.DateTime(
        allow_none=True,
        required=True,
        metadata={"description": "Set when the receiver answered 410 Gone: nothing is sent."},
    )
    links = fields.Nested(WebhookLinksSchema, required=True)


class WebhookWithSecretSchema(WebhookSchema):
    secret = fields.String(
        required=True,
        metadata={
            "description": (
                "The signing secret (whsec_ + base64 of the HMAC key). Shown only when the "
                "webhook is created and when the secret is rotated."
            )
        },
    )


class WebhookListSchema(Schema):
    items = fields.List(fields.Nested(WebhookSchema), required=True)


class DeliveryArgsSchema(StrictSchema):
    page = fields.Integer(load_default=1, validate=validate.Range(min=1, max=100_000))
    page_size = fields.Integer(load_default=20, validate=validate.Range(min=1, max=100))
    status = fields.String(validate=validate.OneOf([s.value for s in DeliveryState]))


class DeliverySchema(Schema):
    id = fields.String(required=True, metadata={"description": "The message's webhook-id."})
    webhook_id = fields.String(required=True)
    event_type = fields.String(required=True)
    status = fields.String(required=True, validate=validate.OneOf([s.value for s in DeliveryState]))
    created_at = fields.DateTime(required=True)
    attempts = fields.Integer(required=True)
    next_attempt_at = fields.DateTime(
        allow_none=True, required=True, metadata={"description": "While pending."}
    )
    delivered_at = fields.DateTime(allow_none=True, required=True)
    gave_up_at = fields.DateTime(allow_none=True, required=True)
    replayed_at = fields.DateTime(allow_none=True, required=True)
    last_status = fields.Integer(
        allow_none=True, required=True, metadata={"description": "The receiver's last status."}
    )
    last_error = fields.String(allow_none=True, required=True)
    payload = fields.Dict(required=True, metadata={"description": "The message's data."})


class DeliveryPageLinksSchema(Schema):
    self = fields.String(required=True)
    next = fields.String(allow_none=True, required=True)
    prev = fields.String(allow_none=True, required=True)


class DeliveryPageSchema(Schema):
    items = fields.List(fields.Nested(DeliverySchema), required=True)
    page = fields.Integer(required=True)
    page_size = fields.Integer(required=True)
    total = fields.Integer(required=True)
    links = fields.Nested(DeliveryPageLinksSchema, required=True)


# ----------------------------------------------------------------------------- helpers


def _view(record: WebhookRecord, *, with_secret: bool = False) -> dict[str, Any]:
    view: dict[str, Any] = {
        "id": record.id,
        "url": record.url,
        "event_types": list(record.event_types),
        "created_at": record.created_at,
        "previous_secret_expires_at": record.previous_secret_expires_at,
        "disabled_at": record.disabled_at,
        "links": {
            "self": url_for("webhooks.Webhook", webhook_id=record.id),
            "deliveries": url_for("webhooks.Deliveries", webhook_id=record.id),
        },
    }
    if with_secret:
        view["secret"] = record.secret
        return WebhookWithSecretSchema().dump(view)
    return WebhookSchema().dump(view)


def _delivery(record: DeliveryRecord) -> dict[str, Any]:
    state = record.state
    return DeliverySchema().dump(
        {
            "id": record.id,
            "webhook_id": record.webhook_id,
            "event_type": record.event_type,
            "status": state.value,
            "created_at": record.created_at,
            "attempts": record.attempts,
            "next_attempt_at": (record.next_attempt_at if state is DeliveryState.PENDING else None),
            "delivered_at": record.delivered_at,
            "gave_up_at": record.gave_up_at,
            "replayed_at": record.replayed_at,
            "last_status": record.last_status,
            "last_error": record.last_error,
            "payload": record.payload,
        }
    )


def _allow_private() -> bool:
    """``WEBHOOKS_ALLOW_PRIVATE``: receivers on private or loopback addresses are allowed."""
    return bool(current_app.config.get("WEBHOOKS_ALLOW_PRIVATE"))


# ----------------------------------------------------------------------------- routes


@blp.route("")
class Webhooks(MethodView):
    @blp.response(200, WebhookListSchema)
    @errors(blp, 401)
    def get(self) -> Response:
        """List your organisation's webhooks (without their secrets)"""
        records = planner().list_webhooks(current_organisation())
        return jsonify({"items": [_view(r) for r in records]})

    @blp.arguments(WebhookCreateSchema())
    @blp.response(
        201,
        WebhookWithSecretSchema,
        headers={
            "Location": {"description": "URL of the new webhook", "schema": {"type": "string"}}
        },
    )
    @idempotent(blp)
    @errors(blp, 400, 401, 413, 415, 422)
    def post(self, payload: dict[str, Any]) -> Response:
        """Subscribe a URL to events

        Every message is a POST with a JSON body `{"type", "timestamp", "data"}` and the
        Standard Webhooks headers `webhook-id` (the same on every retry: de-duplicate on
        it), `webhook-timestamp` and `webhook-signature` (`v1,` + base64 HMAC-SHA256 of
        `{webhook-id}.{webhook-timestamp}.{body}` keyed with the base64-decoded part of
        the secret after `whsec_`). Answer 2xx within 5 seconds; anything else is retried
        with exponential backoff for 24 hours. 410 Gone disables the webhook. The secret
        is shown only in this response.
        """
        record = planner().create_webhook(
            current_organisation(),
            payload["url"],
            payload["event_types"],
            allow_private=_allow_private(),
        )
        response = jsonify(_view(record, with_secret=True))
        response.status_code = 201
        response.headers["Location"] = url_for("webhooks.Webhook", webhook_id=record.id)
        return response


@blp.route("/<webhook_id>")
class Webhook(MethodView):
    @blp.response(200, WebhookSchema)
    @errors(blp, 401, 404)
    def get(self, webhook_id: str) -> Response:
        """Show a webhook (without its secret)"""
        return jsonify(_view(planner().get_webhook(current_organisation(), webhook_id)))

    @blp.response(204)
    @errors(blp, 401, 404)
    def delete(self, webhook_id: str) -> Response:
        """Delete a webhook: nothing more is sent, pending deliveries are dropped"""
        planner().delete_webhook(current_organisation(), webhook_id)
        return Response(status=204)


@blp.route("/<webhook_id>/secret")
class WebhookSecret(MethodView):
    @blp.response(201, WebhookWithSecretSchema)
    @idempotent(blp)
    @errors(blp, 401, 404, 415, 422)
    def post(self, webhook_id: str) -> Response:
        """Rotate the signing secret

        Answers with the new secret. For 24 hours messages carry two signatures, by the
        new and by the old secret, so the receiver can switch over without losing any.
        """
        record = planner().rotate_webhook_secret(current_organisation(), webhook_id)
        response = jsonify(_view(record, with_secret=True))
        response.status_code = 201
        return response


@blp.route("/<webhook_id>/deliveries")
class Deliveries(MethodView):
    @blp.arguments(DeliveryArgsSchema(), location="query")
    @blp.response(200, DeliveryPageSchema)
    @errors(blp, 401, 404, 422)
    def get(self, args: dict[str, Any], webhook_id: str) -> Response:
        """List a webhook's deliveries, newest first

        `status`: `pending` (waiting for its next attempt), `delivered` or `failed`
        (given up after 24 hours). Paged with `page` and `page_size` (1–100).
        """
        page, size = args["page"], args["page_size"]
        records, total = planner().list_deliveries(
            current_organisation(),
            webhook_id,
            limit=size,
            offset=(page - 1) * size,
            state=args.get("status"),
        )
        last_page = max(1, -(-total // size))

        def link(number: int) -> str:
            query: dict[str, Any] = {"page": number, "page_size": size}
            if args.get("status"):
                query["status"] = args["status"]
            return url_for("webhooks.Deliveries", webhook_id=webhook_id, **query)

        return jsonify(
            {
                "items": [_delivery(r) for r in records],
                "page": page,
                "page_size": size,
                "total": total,
                "links": {
                    "self": link(page),
                    "next": link(page + 1) if page < last_page else None,
                    "prev": link(page - 1) if page > 1 else None,
                },
            }
        )


@blp.route("/<webhook_id>/deliveries/<delivery_id>")
class Delivery(MethodView):
    @blp.response(200, DeliverySchema)
    @errors(blp, 401, 404)
    def get(self, webhook_id: str, delivery_id: str) -> Response:
        """Show one delivery: its attempts, the last answer and the message's data"""
        record = planner().get_delivery(current_organisation(), webhook_id, delivery_id)
        return jsonify(_delivery(record))


@blp.route("/<webhook_id>/deliveries/<delivery_id>/replay")
class Replay(MethodView):
    @blp.response(202, DeliverySchema)
    @idempotent(blp)
    @errors(blp, 401, 404, 415, 422)
    def post(self, webhook_id: str, delivery_id: str) -> Response:
        """Send a delivery again

        Queues the message now, with the same `webhook-id` and a new 24-hour retry window,
        whether it was delivered, given up or still pending. 409 if the webhook was
        disabled because its receiver answered 410 Gone.
        """
        record = planner().replay_delivery(current_organisation(), webhook_id, delivery_id)
        response = jsonify(_delivery(record))
        response.status_code = 202
        return response


# ----------------------------------------------------------------------------- in-process delivery


def start_background_delivery(app: Flask, *, interval: float = 1.0) -> BackgroundDelivery | None:
    """Deliver webhooks from a daemon thread of this process, if the app is configured to.

    ``WEBHOOKS_IN_PROCESS``: ``True`` always, ``False`` never, ``None`` (the default) only
    on the embedded SQLite database, where ``planner serve`` is the whole deployment; with
    PostgreSQL run ``planner worker`` processes instead. Call it once per process *after*
    forking (``planner serve`` does it in each gunicorn worker): several running at once is
    safe, claims keep them apart. Returns the running delivery (also kept in
    ``app.extensions["planner"]["webhook_delivery"]``), or ``None``.
    """
    service: Planner = app.extensions["planner"]["planner"]
    background = service.start_delivery(
        in_process=app.config.get("WEBHOOKS_IN_PROCESS"),
        allow_private=bool(app.config.get("WEBHOOKS_ALLOW_PRIVATE")),
        interval=interval,
    )
    if background is not None:
        app.extensions["planner"]["webhook_delivery"] = background
    return background
