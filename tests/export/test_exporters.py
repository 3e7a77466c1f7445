"""The exporters a setting picks: the fast writers and their references give the
same bytes, so ``PLANNER_EXPORTERS`` changes what a revision costs, never what it
stores."""

from __future__ import annotations

from dataclasses import FrozenInstanceError

import pytest

from planner.domain import Plan, RiskFactor
from planner.export import (
    FAST_EXPORTERS,
    REFERENCE_EXPORTERS,
    exporters_named,
    to_ical,
    to_json,
)
from planner.export.to_ical import FeedOptions
from tests.builders import SURGICAL_ID, injury, plan, plan_request, preferences

OPTIONS = [
    FeedOptions(),
    FeedOptions("full", reminder_minutes=30),
    FeedOptions(busy=True),
    FeedOptions(reminder_minutes=1440, show_cancelled=False),
]


def plans() -> list[Plan]:
    """All-day and timed, conservative and surgical, with and without risk factors."""
    made = [
        plan(),
        plan(prefs=preferences(session_time="07:00", timezone="America/New_York")),
        plan(risk_factors=(RiskFactor.LOW_BONE_DENSITY,)),
        plan(plan_request(injury(type="tension"))),
        plan(plan_request(injury(fracture_line=False), prefs=preferences(timezone="Asia/Kolkata"))),
    ]
    assert any(p.protocol.id == SURGICAL_ID for p in made)
    return made


@pytest.mark.parametrize("made", plans(), ids=lambda p: f"{p.protocol.id}-{len(p.sessions)}")
def test_fast_and_reference_exporters_give_the_same_bytes(made: Plan) -> None:
    document = FAST_EXPORTERS.plan_json(made)
    assert document == REFERENCE_EXPORTERS.plan_json(made)
    assert document == to_json.dumps(to_json.render_reference(made))
    for options in OPTIONS:
        calendar = FAST_EXPORTERS.calendar(made, options)
        assert calendar == REFERENCE_EXPORTERS.calendar(made, options)
        assert calendar.startswith(b"BEGIN:VCALENDAR\r\n")


def test_the_fast_exporters_are_the_fast_writers() -> None:
    assert FAST_EXPORTERS.plan_json is to_json.render_bytes
    assert FAST_EXPORTERS.calendar is to_ical.render
    assert REFERENCE_EXPORTERS.calendar is to_ical.render_reference


def test_exporters_by_name() -> None:
    assert exporters_named("fast") is FAST_EXPORTERS
    assert exporters_named("reference") is REFERENCE_EXPORTERS
    for wrong in ("", "Fast", "orjson"):
        with pytest.raises(ValueError, match="'fast' or 'reference'"):
            exporters_named(wrong)


def test_exporters_are_frozen() -> None:
    with pytest.raises(FrozenInstanceError):
        FAST_EXPORTERS.calendar = to_ical.render_reference  # type: ignore[misc]
