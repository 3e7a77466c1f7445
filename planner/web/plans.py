"""Plans: create, read, list, and the iCalendar export."""

from __future__ import annotations

import base64
import json
from datetime import datetime
from typing import Any

from flask import Response, jsonify, request, url_for
from flask.views import MethodView
from flask_smorest import Blueprint
from marshmallow import RAISE

from planner import links
from planner.domain.errors import PlannerError
from planner.schemas.api import (
    PageArgsSchema,
    PlanCreateSchema,
    PlanPageSchema,
    PlanSchema,
    RevisionArgsSchema,
)
from planner.service import PlanRecord
from planner.web.api import errors, idempotent
from planner.web.auth import current_organisation, protect
from planner.web.common import (
    ICAL_MIME,
    JSON_MIME,
    bytes_response,
    conditional,
    current_key_id,
    plan_response,
    planner,
)
from planner.web.fhir import FHIR_MIME, care_plan_resource, fhir_response

blp = protect(
    Blueprint(
        "plans",
        __name__,
        url_prefix=links.PLANS,
        description="Dated return-to-run plans made from an injury classification.",
    )
)


@blp.route("")
class Plans(MethodView):
    @blp.arguments(PageArgsSchema(), location="query", unknown=RAISE)
    @blp.response(200, PlanPageSchema)
    @errors(blp, 401, 422)
    def get(self, args: dict[str, Any]) -> Response:
        """List your organisation's plans, newest first

        Filter by `athlete_reference`, `external_id` and `status`. Cursor-paged:
        `page_size` (1–100, default 20) plans a page, and `links.next` (null on the last
        page) fetches the next one; `total` counts every plan the filters match.
        """
        filters = {k: args[k] for k in ("athlete_reference", "external_id", "status") if k in args}
        if "status" in filters:
            filters["status"] = filters["status"].value
        size = args["page_size"]
        given = args.get("cursor")
        records, total, more = planner().list_plans(
            current_organisation(),
            page_size=size,
            before=decode_cursor(given) if given else None,
            **filters,
        )
        cursor = encode_cursor(records[-1]) if more else None
        query = {"page_size": size, **filters}
        return jsonify(
            {
                "items": [summary(r) for r in records],
                "page_size": size,
                "total": total,
                "links": {
                    "self": url_for("plans.Plans", **query, **_cursor(args.get("cursor"))),
                    "next": url_for("plans.Plans", **query, cursor=cursor) if cursor else None,
                },
            }
        )

    @blp.arguments(PlanCreateSchema())
    @blp.response(
        201,
        PlanSchema,
        headers={"Location": {"description": "URL of the new plan", "schema": {"type": "string"}}},
    )
    @idempotent(blp)
    @errors(blp, 400, 401, 413, 415, 422)
    def post(self, payload: dict[str, Any]) -> Response:
        """Create a plan

        Triage the classification (tension-side, displaced or extensive fractures go to
        surgical referral), select the protocol and lay out dated phases and sessions.
        Only `diagnosis_date` and `injury.site` (+ `injury.type` for the femoral neck)
        are required.
        """
        record = planner().create_plan(current_organisation(), payload, current_key_id())
        response = plan_response(record, 201)
        response.headers["Location"] = url_for("plans.Plan", plan_id=record.id)
        return response


@blp.route("/<plan_id>")
class Plan(MethodView):
    @blp.arguments(RevisionArgsSchema(), location="query", unknown=RAISE)
    @blp.response(200, PlanSchema)
    @blp.alt_response(
        200,
        schema={"type": "object", "description": "FHIR R4 CarePlan"},
        content_type=FHIR_MIME,
        description="With `Accept: application/fhir+json`: the plan as a FHIR R4 CarePlan",
        success=True,
    )
    @blp.alt_response(304, description="Not modified (If-None-Match)")
    @errors(blp, 401, 404, 422)
    def get(self, args: dict[str, Any], plan_id: str) -> Response:
        """Get a plan, or one of its earlier revisions

        Answers with a strong `ETag` (send it back in `If-Match` when recording a
        check-in or gate) and honours `If-None-Match` (304). `?revision=N` shows
        revision N as it was. With `Accept: application/fhir+json` the plan comes as
        a FHIR R4 CarePlan.
        """
        organisation = current_organisation()
        if request.accept_mimetypes.best_match([JSON_MIME, FHIR_MIME]) == FHIR_MIME:
            return fhir_response(care_plan_resource(organisation, plan_id))
        if args.get("revision"):
            body = planner().revision_document(organisation, plan_id, args["revision"])
            response = bytes_response(body, JSON_MIME)
            response.add_etag()
        else:
            response = plan_response(planner().plan_document(organisation, plan_id))
        return conditional(response)


@blp.route(f"/<plan_id>{links.CALENDAR_SUFFIX}")
class PlanCalendar(MethodView):
    @blp.response(200, {"type": "string"}, content_type=ICAL_MIME)
    @blp.alt_response(304, description="Not modified (If-None-Match)")
    @errors(blp, 401, 404)
    def get(self, plan_id: str) -> Response:
        """Download a plan as iCalendar

        One event per session (UIDs stable across revisions) and one all-day event per
        phase. Titles name the activity, never the diagnosis, unless the plan's feed
        settings opt in to full detail.
        """
        record = planner().get_plan(current_organisation(), plan_id)
        response = bytes_response(record.ics, ICAL_MIME)
        response.set_etag(record.etag.strip('"'))
        response.headers["Content-Disposition"] = f'attachment; filename="plan-{record.id}.ics"'
        return response.make_conditional(request)


@blp.route("/<plan_id>/confirm")
class ConfirmPlan(MethodView):
    @blp.response(200, PlanSchema)
    @idempotent(blp)
    @errors(blp, 401, 404, 409, 415, 422)
    def post(self, plan_id: str) -> Response:
        """Confirm a plan as a clinician

        Until then the plan is a proposal (FHIR CarePlan `intent: proposal`); once
        confirmed, `intent: plan`. Confirming twice changes nothing.
        """
        record = planner().confirm(current_organisation(), plan_id, current_key_id())
        return plan_response(record)


def summary(record: PlanRecord) -> dict[str, Any]:
    """A list entry, from the stored document (no re-planning on reads)."""
    document = json.loads(record.document)
    document["links"] = planner().plan_links(record)
    protocol = document["protocol"]
    return {
        "protocol": {
            "id": protocol["id"],
            "version": protocol["version"],
            "title": protocol["title"],
        },
    } | {
        key: document.get(key)
        for key in (
            "id",
            "external_id",
            "revision",
            "status",
            "created_at",
            "athlete",
            "pathway",
            "start_date",
            "expected_return_to_run_date",
            "links",
        )
    }


def _cursor(cursor: str | None) -> dict[str, str]:
    return {"cursor": cursor} if cursor else {}


class InvalidCursor(PlannerError):
    code = "invalid_request"


def encode_cursor(record: PlanRecord) -> str:
    """An opaque, URL-safe position after ``record`` in newest-first order."""
    raw = json.dumps([record.created_at.isoformat(), record.id]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, str]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        created, plan_id = json.loads(raw)
        position = datetime.fromisoformat(created)
        if position.tzinfo is None:  # only a forged cursor lacks the zone ours carry
            raise ValueError("naive datetime")
        return position, str(plan_id)
    except (ValueError, TypeError) as exc:
        raise InvalidCursor(
            "Invalid cursor.", {"cursor": ["Use the links.next of the previous page."]}
        ) from exc
