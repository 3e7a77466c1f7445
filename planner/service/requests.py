"""What a client sends, as the domain takes it: plan requests and events.

Requests arrive validated by the API schemas (``planner.schemas.api``); these functions
only translate them. A plan keeps its request as a normalised document so that it can be
re-made — and every later revision replayed — from what is stored.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import replace
from datetime import date, datetime
from typing import Any

from marshmallow import ValidationError

from planner.catalog import Catalog
from planner.domain.errors import InvalidInjury, PlannerError
from planner.domain.injury import classify
from planner.domain.model import (
    Athlete,
    Plan,
    PlanRequest,
    Preferences,
    RedFlag,
    RiskAssessment,
    RiskFactor,
)
from planner.domain.planning import local_date, make_plan
from planner.domain.progress import Cancel, CheckIn, Event, Gate
from planner.domain.scheduling import weekdays_in_order
from planner.schemas.api import RISK_ASSESSMENT_REQUEST_FIELDS, PlanCreateSchema, PlanSchema

log = logging.getLogger(__name__)


def plan_request(payload: Mapping[str, Any]) -> PlanRequest:
    """Turn a request validated by ``PlanCreateSchema`` into the domain's request.

    Raises:
        InvalidInjury: with field paths prefixed ``injury.`` so clients can point at them.
    """
    try:
        injury = classify(**dict(payload["injury"]))
    except InvalidInjury as exc:
        raise InvalidInjury(
            exc.detail, {f"injury.{name}": msgs for name, msgs in exc.errors.items()}
        ) from None
    schedule = payload.get("schedule") or {}
    athlete = payload.get("athlete") or {}
    preferences = Preferences(
        run_days=weekdays_in_order(schedule.get("run_days")) or Preferences().run_days,
        session_time=schedule.get("session_time") or None,
        timezone=payload.get("timezone") or "UTC",
    )
    answers = payload.get("risk_assessment")
    return PlanRequest(
        diagnosis_date=payload["diagnosis_date"],
        start_date=payload.get("start_date"),
        injury=injury,
        athlete=Athlete(reference=athlete.get("reference"), name=athlete.get("name")),
        risk_factors=tuple(r for r in RiskFactor if r in set(payload.get("risk_factors") or ())),
        preferences=preferences,
        external_id=payload.get("external_id"),
        risk_assessment=None if answers is None else RiskAssessment(**dict(answers)),
    )


def build_plan(
    payload: Mapping[str, Any], catalog: Catalog, *, plan_id: str, created_at: datetime
) -> Plan:
    """The plan for a validated request: the one path both the API and the CLI take."""
    request = plan_request(payload)
    today = local_date(created_at, request.preferences.timezone)  # refuses a future diagnosis
    return make_plan(request, catalog, plan_id=plan_id, created_at=created_at, today=today)


_REQUEST_SCHEMA = PlanSchema(
    only=(
        "external_id",
        "diagnosis_date",
        "start_date",
        "timezone",
        "athlete",
        "injury",
        "risk_factors",
        "schedule",
        *RISK_ASSESSMENT_REQUEST_FIELDS,  # the answers only: the score is recomputed
    )
)
_CREATE_SCHEMA = PlanCreateSchema()


def request_document(plan: Plan) -> dict[str, Any]:
    """The normalised input, kept so the plan can be re-made and revised."""
    document: dict[str, Any] = _REQUEST_SCHEMA.dump(plan)
    return document


def request_from_document(document: Mapping[str, Any]) -> PlanRequest:
    """The inverse of :func:`request_document` (classification is idempotent)."""
    return plan_request(_CREATE_SCHEMA.load(_without_nulls(document)))


def as_replayed(plan: Plan, request: Mapping[str, Any]) -> Plan | None:
    """``plan`` with its request as :func:`request_from_document` reads ``request`` back
    (``None``: it does not read back, so there is nothing to resume from)."""
    try:
        return replace(plan, request=request_from_document(request))
    except (PlannerError, ValidationError):
        log.warning("plan %s: request does not read back, stored without state", plan.id)
        return None


def _without_nulls(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {k: _without_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_without_nulls(v) for v in value]
    return value


def event_from_payload(kind: str, payload: Mapping[str, Any], today: date) -> Event:
    """A stored or submitted event payload (JSON-ready) → the domain event."""
    if kind == "check_in":
        return CheckIn(
            session_uid=payload.get("session_uid"),
            on=_date(payload.get("date")),
            completed=payload.get("completed", True),
            pain_during=payload.get("pain_during", 0),
            pain_after=payload.get("pain_after", 0),
            pain_next_morning=payload.get("pain_next_morning", 0),
            pain_building=payload.get("pain_building", False),
            gait_changed=payload.get("gait_changed", False),
            morning_stiffness=payload.get("morning_stiffness", False),
            red_flags=tuple(RedFlag(f) for f in payload.get("red_flags", ())),
            notes=payload.get("notes", ""),
        )
    if kind == "gate":
        return Gate(
            phase=payload["phase"],
            met=payload["met"],
            on=_date(payload.get("date")) or today,
            criteria=tuple(payload.get("criteria", ())),
            extend_days=payload.get("extend_days", 7),
            notes=payload.get("notes", ""),
        )
    if kind == "cancel":
        return Cancel(on=today, reason=payload.get("reason", ""))
    raise ValueError(f"unknown event kind {kind!r}")


def _date(value: Any) -> date | None:
    return date.fromisoformat(value) if isinstance(value, str) else value


def json_ready(payload: Mapping[str, Any]) -> dict[str, Any]:
    """Dates as ISO strings, enums as values: what the event log stores."""
    ready: dict[str, Any] = {}
    for key, value in payload.items():
        if key == "revision":
            continue
        if isinstance(value, date):
            value = value.isoformat()
        elif isinstance(value, list):
            value = [getattr(v, "value", v) for v in value]
        ready[key] = getattr(value, "value", value)
    return ready


__all__ = [
    "as_replayed",
    "build_plan",
    "event_from_payload",
    "json_ready",
    "plan_request",
    "request_document",
    "request_from_document",
]
