"""In-process timings: the work behind a request without HTTP, storage or gunicorn,
each next to the reference exporters (``planner.export.REFERENCE_EXPORTERS``) that
the fast ones replace. The planner is imported only when a timing runs, so the
bench's own start (``--help``, the HTTP half) stays light."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from typing import Any

from bench.plans import DAYS_SINCE_DIAGNOSIS, PLAN_ID, plan_payload


def _median_us(function: Callable[[], object], *, repeat: int, warmup: int = 3) -> float:
    for _ in range(warmup):
        function()
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        function()
        times.append(time.perf_counter() - started)
    return statistics.median(times) * 1e6


def in_process(repeat: int) -> dict[str, float]:
    """Median µs: build + JSON of the default conservative plan; iCalendar of a
    100-session plan; the least work of the HTTP run's writes; and the reference
    exporters' times for the same plans (fewer samples: they are slow)."""
    from planner.catalog import load_catalog
    from planner.domain import PlanRequest, Preferences, classify, make_plan
    from planner.export import FAST_EXPORTERS, REFERENCE_EXPORTERS, to_json
    from planner.export.to_ical import FeedOptions

    catalog = load_catalog()
    created = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
    default = PlanRequest(
        diagnosis_date=date(2026, 11, 20),
        injury=classify(site="femoral_neck", type="compression", fracture_line_pct=20),
    )

    def build(request: PlanRequest = default) -> Any:
        return make_plan(request, catalog, plan_id=PLAN_ID, created_at=created)

    timed = PlanRequest(
        diagnosis_date=date(2026, 11, 20),
        injury=default.injury,
        preferences=Preferences(session_time="07:00", timezone="America/New_York"),
    )
    plan = build(timed)
    hundred = replace(plan, sessions=plan.sessions[:100])
    assert len(hundred.sessions) == 100
    options = FeedOptions()
    fast, reference = FAST_EXPORTERS, REFERENCE_EXPORTERS
    return {
        **{
            f"write_work_{kind}": us
            for kind, us in write_work_us(catalog, created, repeat=repeat).items()
        },
        "build_json": _median_us(lambda: fast.plan_json(build()), repeat=repeat),
        "build": _median_us(build, repeat=repeat),
        "build_json_reference": _median_us(
            lambda: reference.plan_json(build()), repeat=max(repeat // 10, 5)
        ),
        # the compiled dumper written by the standard library instead of orjson
        "build_json_stdlib": _median_us(
            lambda: to_json.dumps(to_json.render(build())), repeat=repeat
        ),
        "build_json_timed": _median_us(lambda: fast.plan_json(build(timed)), repeat=repeat),
        "ics_100": _median_us(lambda: fast.calendar(hundred, options), repeat=repeat),
        "ics_100_reference": _median_us(
            lambda: reference.calendar(hundred, options), repeat=max(repeat // 20, 5)
        ),
    }


def write_work_us(catalog: Any, created: datetime, *, repeat: int) -> dict[str, float]:
    """Median µs of the least the HTTP run's writes must do in-process when calendars are
    rendered once per revision and never on a GET: for ``"post"``, make the plan the bench
    POSTs (same payload, 38 days after diagnosis) and write its JSON and iCalendar; for
    ``"check_in"``, revise that plan with a check-in of its first past session and write
    the revision's. Validation, the state blob, storage and HTTP all come on top."""
    from planner.domain.planning import planning_context
    from planner.domain.progress import revise
    from planner.export import FAST_EXPORTERS as exporters
    from planner.schemas.api import FeedSettingsSchema, PlanCreateSchema
    from planner.service.rendering import feed_options
    from planner.service.requests import build_plan, event_from_payload

    today = created.date()
    payload = PlanCreateSchema().load(plan_payload(today - timedelta(days=DAYS_SINCE_DIAGNOSIS)))
    options = feed_options(FeedSettingsSchema().load({}))  # what the POST gets

    def make() -> Any:
        return build_plan(payload, catalog, plan_id=PLAN_ID, created_at=created)

    def render(plan: Any) -> None:
        exporters.plan_json(plan)
        exporters.calendar(plan, options)

    plan = make()
    protocol = catalog.get(plan.protocol.id)
    context = planning_context(plan.request.injury, plan.selection)
    past = next(s.uid for s in plan.sessions if s.date < today)  # as the HTTP run does
    check_in = event_from_payload("check_in", {"session_uid": past}, today)

    def check() -> None:
        revised, _ = revise(plan, protocol, check_in, context=context, today=today, at=created)
        render(revised)

    return {
        "post": _median_us(lambda: render(make()), repeat=repeat),
        "check_in": _median_us(check, repeat=repeat),
    }
