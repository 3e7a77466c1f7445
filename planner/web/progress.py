"""Progress on a plan: check-ins, phase gates, cancellation and the revision history."""

from __future__ import annotations

from typing import Any

from flask import Response, g, jsonify, request, url_for
from flask.views import MethodView
from flask_smorest import Blueprint

from planner import links
from planner.export import to_json
from planner.schemas.api import (
    CancelSchema,
    CheckInCreateSchema,
    EventListSchema,
    GateCreateSchema,
    RecordedSchema,
    RevisionListSchema,
)
from planner.service import ApiKey, EventRecord, Precondition, Recorded
from planner.web.api import errors, idempotent
from planner.web.auth import current_organisation, protect
from planner.web.common import current_key_id, planner
from planner.web.conditional import if_match
from planner.web.idempotency import PARAMETER as IDEMPOTENCY_KEY

blp = protect(
    Blueprint(
        "progress",
        __name__,
        url_prefix=links.PLANS,
        description=(
            "Record how sessions went and what the clinician decided; the plan is "
            "revised (criteria-gated, pain rules of the protocol) and every revision kept."
        ),
    )
)

IF_MATCH = {
    "name": "If-Match",
    "in": "header",
    "required": False,
    "description": "The plan's ETag as you read it; a newer plan makes this a 412.",
    "schema": {"type": "string"},
}


def _precondition() -> Precondition | None:
    header = request.headers.get("If-Match")
    return None if header is None else if_match(header)


def _recorded(result: Recorded) -> Response:
    """Decision, event and the revised plan; the plan bytes are spliced in as served."""
    plan, etag = planner().served(result.record)  # the ETag a GET of the plan answers now
    key: ApiKey = g.api_key  # the key that recorded it
    event = _event(result.event, {key.id: key.name})
    head = to_json.dumps({"decision": result.event.decision or {}, "event": event})
    response = Response(head[:-1] + b',"plan":' + plan + b"}", 201, mimetype="application/json")
    response.headers["Location"] = url_for("plans.Plan", plan_id=result.record.id)
    response.set_etag(etag.strip('"'))
    return response


def _event(record: EventRecord, keys: dict[int, str]) -> dict[str, Any]:
    """An event as ``EventOutSchema`` documents it (its decision is stored dumped);
    ``keys`` names the keys by id."""
    return {
        "seq": record.seq,
        "kind": record.kind,
        "date": record.today.isoformat(),
        "recorded_at": record.recorded_at.isoformat(),
        "key": keys.get(record.key_id) if record.key_id else None,
        "revision": record.revision,
        "payload": record.payload,
        "decision": record.decision,
    }


@blp.route("/<plan_id>/check-ins")
class CheckIns(MethodView):
    @blp.arguments(CheckInCreateSchema())
    @blp.response(201, RecordedSchema)
    @blp.doc(parameters=[IF_MATCH, IDEMPOTENCY_KEY])
    @idempotent(blp)
    @errors(blp, 400, 401, 404, 409, 412, 413, 415, 422)
    def post(self, payload: dict[str, Any], plan_id: str) -> Response:
        """Record how a session went

        Pain-free sessions count toward the level; pain ≤ 2/10 that settles or
        next-morning stiffness repeats the level; pain ≥ 3/10, building pain or a
        changed gait goes back one level after a rest day; any red flag stops the plan
        and refers the runner (`cannot_bear_weight`: emergency care). Answers with the
        decision, the reason and the revised plan.
        """
        result = planner().check_in(
            current_organisation(),
            plan_id,
            payload,
            key_id=current_key_id(),
            precondition=_precondition(),
        )
        return _recorded(result)

    @blp.response(200, EventListSchema)
    @errors(blp, 401, 404)
    def get(self, plan_id: str) -> Response:
        """List the plan's check-ins with their decisions, oldest first"""
        events = planner().events(current_organisation(), plan_id, kind="check_in")
        keys = planner().key_names(e.key_id for e in events)
        return jsonify({"items": [_event(e, keys) for e in events]})


@blp.route("/<plan_id>/phases/<phase_key>/gate")
class PhaseGate(MethodView):
    @blp.arguments(GateCreateSchema())
    @blp.response(201, RecordedSchema)
    @blp.doc(parameters=[IF_MATCH, IDEMPOTENCY_KEY])
    @idempotent(blp)
    @errors(blp, 400, 401, 404, 409, 412, 413, 415, 422)
    def post(self, payload: dict[str, Any], plan_id: str, phase_key: str) -> Response:
        """Record a clinician's decision on a phase's exit criteria

        `met: true` starts the next phase the day after `date` (earlier or later than
        projected); `met: false` extends the phase by `extend_days` (default 7) and
        schedules a new review at its new end.
        """
        result = planner().gate(
            current_organisation(),
            plan_id,
            phase_key,
            payload,
            key_id=current_key_id(),
            precondition=_precondition(),
        )
        return _recorded(result)


@blp.route("/<plan_id>/cancel")
class CancelPlan(MethodView):
    @blp.arguments(CancelSchema())
    @blp.response(201, RecordedSchema)
    @blp.doc(parameters=[IF_MATCH, IDEMPOTENCY_KEY])
    @idempotent(blp)
    @errors(blp, 400, 401, 404, 409, 412, 413, 415, 422)
    def post(self, payload: dict[str, Any], plan_id: str) -> Response:
        """Cancel a plan

        Its status becomes `cancelled`; future sessions stay in the calendar feed as
        cancelled events for 14 days, so subscribed calendars update them in place,
        then drop out. A `stopped` plan can be cancelled too: that is how a clinician
        ends it (or refers the runner on) after a red flag.
        """
        result = planner().cancel(
            current_organisation(),
            plan_id,
            payload,
            key_id=current_key_id(),
            precondition=_precondition(),
        )
        return _recorded(result)


@blp.route("/<plan_id>/revisions")
class Revisions(MethodView):
    @blp.response(200, RevisionListSchema)
    @errors(blp, 401, 404)
    def get(self, plan_id: str) -> Response:
        """List every revision of the plan: when, by which key, and why"""
        revisions = planner().revisions(current_organisation(), plan_id)
        names = planner().key_names(r.key_id for r in revisions)
        items = [
            {
                "revision": r.revision,
                "created_at": r.created_at.isoformat(),
                "kind": r.kind,
                "reason": r.reason,
                "key": names.get(r.key_id) if r.key_id else None,
                "links": {"self": links.plan_revision(plan_id, r.revision)},
            }
            for r in revisions
        ]
        return jsonify({"items": items})
