"""Plans: create, read, list, and the iCalendar export."""

from __future__ import annotations

import json
from typing import Any

from flask import Response, current_app, jsonify, request, url_for
from flask.views import MethodView
from flask_smorest import Blueprint

from planner.schemas.api import (
    PageArgsSchema,
    PlanCreateSchema,
    PlanPageSchema,
    PlanSchema,
)
from planner.services import Planner
from planner.store import PlanRecord
from planner.web.api import errors
from planner.web.auth import current_organisation, protect

blp = protect(
    Blueprint(
        "plans",
        __name__,
        url_prefix="/v1/plans",
        description="Dated return-to-run plans made from an injury classification.",
    )
)

ICAL_MIME = "text/calendar"


def planner() -> Planner:
    return current_app.extensions["planner"]["planner"]


def _bytes_response(body: bytes, mimetype: str, status: int = 200) -> Response:
    response = Response(body, status=status, mimetype=mimetype)
    if mimetype == ICAL_MIME:
        response.headers["Content-Type"] = "text/calendar; charset=utf-8"
    return response


@blp.route("")
class Plans(MethodView):
    @blp.arguments(PageArgsSchema, location="query")
    @blp.response(200, PlanPageSchema)
    @errors(blp, 401, 422)
    def get(self, args: dict[str, Any]) -> Response:
        """List your organisation's plans, newest first

        Paged with `page` (from 1) and `page_size` (1–100, default 20).
        """
        page, size = args["page"], args["page_size"]
        records, total = planner().list_plans(current_organisation(), page=page, page_size=size)
        last_page = max(1, -(-total // size))
        return jsonify(
            {
                "items": [summary(r) for r in records],
                "page": page,
                "page_size": size,
                "total": total,
                "links": {
                    "self": _page_link(page, size),
                    "next": _page_link(page + 1, size) if page < last_page else None,
                    "prev": _page_link(page - 1, size) if page > 1 else None,
                },
            }
        )

    @blp.arguments(PlanCreateSchema)
    @blp.response(
        201,
        PlanSchema,
        headers={"Location": {"description": "URL of the new plan", "schema": {"type": "string"}}},
    )
    @errors(blp, 400, 401, 413, 415, 422)
    def post(self, payload: dict[str, Any]) -> Response:
        """Create a plan

        Triage the classification (tension-side, displaced or extensive fractures go to
        surgical referral), select the protocol and lay out dated phases and sessions.
        Only `diagnosis_date` and `injury.site` (+ `injury.type` for the femoral neck)
        are required.
        """
        record = planner().create_plan(current_organisation(), payload)
        response = _bytes_response(record.document, "application/json", 201)
        response.headers["Location"] = url_for("plans.Plan", plan_id=record.id)
        return response


@blp.route("/<plan_id>")
class Plan(MethodView):
    @blp.response(200, PlanSchema)
    @errors(blp, 401, 404)
    def get(self, plan_id: str) -> Response:
        """Get a plan

        Answers with a strong `ETag` and honours `If-None-Match` (304).
        """
        record = planner().get_plan(current_organisation(), plan_id)
        response = _bytes_response(record.document, "application/json")
        response.add_etag()
        return response.make_conditional(request)


@blp.route("/<plan_id>.ics")
class PlanCalendar(MethodView):
    @blp.response(200, {"type": "string"}, content_type=ICAL_MIME)
    @errors(blp, 401, 404)
    def get(self, plan_id: str) -> Response:
        """Download a plan as iCalendar

        One event per session (UIDs stable across revisions) and one all-day event per
        phase. Titles name the activity, never the diagnosis.
        """
        record = planner().get_plan(current_organisation(), plan_id)
        response = _bytes_response(record.ics, ICAL_MIME)
        response.set_etag(record.etag.strip('"'))
        response.headers["Content-Disposition"] = f'attachment; filename="plan-{record.id}.ics"'
        return response.make_conditional(request)


def summary(record: PlanRecord) -> dict[str, Any]:
    """A list entry, from the stored document (no re-planning on reads)."""
    document = json.loads(record.document)
    protocol = document["protocol"]
    return {
        "protocol": {
            "id": protocol["id"],
            "version": protocol["version"],
            "title": protocol["title"],
        },
    } | {
        key: document[key]
        for key in (
            "id",
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


def _page_link(page: int, size: int) -> str:
    return url_for("plans.Plans", page=page, page_size=size)
