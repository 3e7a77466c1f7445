"""Plain builders for tests: valid defaults, so a test overrides only what it is about."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, date, datetime
from functools import cache
from typing import Any

from planner.catalog import Catalog, load_catalog
from planner.domain import (
    Injury,
    Plan,
    PlanRequest,
    Preferences,
    Protocol,
    RiskFactor,
    Session,
    SessionKind,
    Weekday,
    classify,
    make_plan,
)

#: A Monday, so weeks of the plan line up with calendar weeks.
DIAGNOSIS_DATE = date(2027, 1, 4)
CREATED_AT = datetime(2027, 1, 4, 9, 30, tzinfo=UTC)
PLAN_ID = "plan-0001"

CONSERVATIVE_ID = "femoral-neck-compression-conservative"
SURGICAL_ID = "femoral-neck-surgical-referral"
CONSERVATIVE_PHASES = (
    "non_weight_bearing",
    "protected_weight_bearing",
    "walking",
    "graded_running",
    "return_to_training",
)


@cache
def shipped_catalog() -> Catalog:
    """The protocols shipped with the package (loaded once per test run)."""
    return load_catalog()


def injury(**overrides: Any) -> Injury:
    """A classified femoral-neck injury: compression side, left, unless overridden."""
    fields: dict[str, Any] = {"site": "femoral_neck", "type": "compression", "laterality": "left"}
    fields.update(overrides)
    return classify(**fields)


def preferences(
    run_days: Iterable[str | Weekday] = ("MO", "WE", "FR"),
    session_time: str | None = None,
    timezone: str = "UTC",
) -> Preferences:
    """Schedule preferences from weekday codes."""
    return Preferences(
        run_days=tuple(Weekday(d) for d in run_days),
        session_time=session_time,
        timezone=timezone,
    )


def plan_request(
    injury_: Injury | None = None,
    *,
    diagnosis_date: date = DIAGNOSIS_DATE,
    start_date: date | None = None,
    risk_factors: Iterable[str | RiskFactor] = (),
    prefs: Preferences | None = None,
) -> PlanRequest:
    """A plan request; the injury defaults to a compression-side fracture line."""
    return PlanRequest(
        diagnosis_date=diagnosis_date,
        injury=injury_ if injury_ is not None else injury(fracture_line=True),
        start_date=start_date,
        risk_factors=tuple(RiskFactor(r) for r in risk_factors),
        preferences=prefs if prefs is not None else preferences(),
    )


def plan(
    request: PlanRequest | None = None,
    *,
    catalog: Iterable[Protocol] | None = None,
    plan_id: str = PLAN_ID,
    created_at: datetime = CREATED_AT,
    **request_fields: Any,
) -> Plan:
    """``make_plan`` with the shipped catalog; keyword arguments build the request."""
    if request is None:
        request = plan_request(**request_fields)
    elif request_fields:
        raise TypeError("Pass either a request or request fields, not both.")
    return make_plan(
        request,
        shipped_catalog() if catalog is None else catalog,
        plan_id=plan_id,
        created_at=created_at,
    )


def sessions(
    plan_: Plan, *, phase: str | None = None, kind: SessionKind | str | None = None
) -> list[Session]:
    """The plan's sessions, optionally only those of one phase and/or kind."""
    return [
        s
        for s in plan_.sessions
        if (phase is None or s.phase == phase) and (kind is None or s.kind == kind)
    ]


def running(plan_: Plan) -> list[Session]:
    """The plan's running sessions (run_walk and run), in date order."""
    return [s for s in plan_.sessions if s.kind.is_running]
