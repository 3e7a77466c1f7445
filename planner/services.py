"""Use cases: the glue between HTTP/CLI input, the domain, the exporters and the store.

No HTTP here: handlers and the command line call these functions and only translate
their inputs and outputs.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from planner.catalog import Catalog
from planner.domain.errors import InvalidInjury, PlannerError
from planner.domain.injury import classify
from planner.domain.model import (
    Athlete,
    Plan,
    PlanRequest,
    Preferences,
    RiskFactor,
    Weekday,
)
from planner.domain.planning import make_plan
from planner.export import to_ical, to_json
from planner.schemas.api import PlanSchema
from planner.store import PlanRecord, Store, strong_etag


class PlanNotFound(PlannerError):
    code = "plan_not_found"


def utcnow() -> datetime:
    """Whole seconds: the calendar's DTSTAMP has no finer resolution."""
    return datetime.now(UTC).replace(microsecond=0)


def plan_request(payload: Mapping[str, Any]) -> PlanRequest:
    """Turn a request validated by ``PlanCreateSchema`` into the domain's request.

    Raises:
        InvalidInjury: with field paths prefixed ``injury.`` so clients can point at them.
    """
    injury_fields = dict(payload["injury"])
    try:
        injury = classify(**injury_fields)
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
    return PlanRequest(
        diagnosis_date=payload["diagnosis_date"],
        start_date=payload.get("start_date"),
        injury=injury,
        athlete=Athlete(reference=athlete.get("reference"), name=athlete.get("name")),
        risk_factors=tuple(r for r in RiskFactor if r in set(payload.get("risk_factors") or ())),
        preferences=preferences,
    )


def weekdays_in_order(days: Any) -> tuple[Weekday, ...]:
    """Run days in Monday-first order without repeats, whatever order they came in."""
    chosen = {Weekday(d) for d in days or ()}
    return tuple(d for d in Weekday if d in chosen)


def build_plan(
    payload: Mapping[str, Any], catalog: Catalog, *, plan_id: str, created_at: datetime
) -> Plan:
    """The plan for a validated request: the one path both the API and the CLI take."""
    return make_plan(plan_request(payload), catalog, plan_id=plan_id, created_at=created_at)


@dataclass
class Planner:
    """Plans of one deployment: a catalog, a store, a clock and an id source."""

    catalog: Catalog
    store: Store
    clock: Callable[[], datetime] = utcnow
    new_id: Callable[[], str] = field(default=lambda: str(uuid.uuid4()))

    def create_plan(self, organisation: str, payload: Mapping[str, Any]) -> PlanRecord:
        """Make, render and store a plan in one transaction; on error nothing is kept."""
        plan = build_plan(payload, self.catalog, plan_id=self.new_id(), created_at=self.clock())
        record = render_record(plan, organisation)
        self.store.add_plan(record)
        return record

    def get_plan(self, organisation: str, plan_id: str) -> PlanRecord:
        record = self.store.get_plan(organisation, plan_id)
        if record is None:
            raise PlanNotFound(f"No plan {plan_id!r} in your organisation.")
        return record

    def list_plans(
        self, organisation: str, *, page: int, page_size: int
    ) -> tuple[list[PlanRecord], int]:
        return self.store.list_plans(organisation, limit=page_size, offset=(page - 1) * page_size)


def render_record(plan: Plan, organisation: str) -> PlanRecord:
    """Render the revision once — JSON and iCalendar bytes — so reads serve bytes."""
    ics = to_ical.render(plan)
    return PlanRecord(
        id=plan.id,
        organisation=organisation,
        revision=plan.revision,
        status=plan.status.value,
        created_at=plan.created_at,
        updated_at=plan.updated_at,
        athlete_reference=plan.request.athlete.reference,
        protocol_id=plan.protocol.id,
        protocol_version=plan.protocol.version,
        request=request_document(plan),
        document=to_json.dumps(to_json.render(plan)),
        ics=ics,
        etag=strong_etag(ics),
    )


def request_document(plan: Plan) -> dict[str, Any]:
    """The normalised input, kept so a plan can be re-made or revised later."""
    return _REQUEST_SCHEMA.dump(plan)


_REQUEST_SCHEMA = PlanSchema(
    only=(
        "diagnosis_date",
        "start_date",
        "timezone",
        "athlete",
        "injury",
        "risk_factors",
        "schedule",
    )
)
