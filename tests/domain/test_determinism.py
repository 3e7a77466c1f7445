"""The same inputs always give the same plan; identity only changes UIDs."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from planner.domain import Plan
from planner.domain.scheduling import UID_DOMAIN
from tests.builders import injury, plan, plan_request, preferences, shipped_catalog

CASES = [
    pytest.param({}, id="oedema"),
    pytest.param({"fracture_line": True}, id="line"),
    pytest.param({"type": "tension"}, id="tension"),
    pytest.param({"displaced": True}, id="emergency"),
]


def _request(fields: dict[str, Any]) -> Any:
    return plan_request(
        injury(**fields),
        risk_factors=["female", "low_bone_density"],
        prefs=preferences(session_time="07:00", timezone="America/New_York"),
    )


def _shape(made: Plan) -> list[tuple[Any, ...]]:
    return [(s.key, s.date, s.start, s.end, s.phase, s.kind, s.title) for s in made.sessions]


@pytest.mark.parametrize("fields", CASES)
def test_same_request_catalog_id_and_time_give_an_identical_plan(fields: dict[str, Any]) -> None:
    first = plan(_request(fields))
    again = plan(_request(fields))
    assert first == again
    assert first is not again


def test_a_freshly_loaded_catalog_gives_the_same_plan() -> None:
    from planner.catalog import load_catalog

    request = _request({"fracture_line": True})
    assert plan(request) == plan(request, catalog=load_catalog())


def test_catalog_order_does_not_change_the_plan() -> None:
    request = _request({})
    reversed_catalog = list(reversed(list(shipped_catalog())))
    assert plan(request) == plan(request, catalog=reversed_catalog)


def test_created_at_only_stamps_the_plan() -> None:
    request = _request({"fracture_line": True})
    early = plan(request, created_at=datetime(2027, 1, 1, tzinfo=UTC))
    late = plan(request, created_at=datetime(2030, 6, 1, tzinfo=UTC))
    assert (early.created_at, early.updated_at) != (late.created_at, late.updated_at)
    assert early.sessions == late.sessions
    assert early.phases == late.phases


@pytest.mark.parametrize("fields", CASES)
def test_different_plan_ids_give_different_uids_and_otherwise_identical_sessions(
    fields: dict[str, Any],
) -> None:
    one = plan(_request(fields), plan_id="plan-a")
    other = plan(_request(fields), plan_id="plan-b")
    assert not {s.uid for s in one.sessions} & {s.uid for s in other.sessions}
    assert _shape(one) == _shape(other)
    assert one.phases == other.phases
    assert one.alerts == other.alerts


@pytest.mark.parametrize("fields", CASES)
def test_uids_are_unique_within_a_plan(fields: dict[str, Any]) -> None:
    made = plan(_request(fields))
    uids = [s.uid for s in made.sessions]
    keys = [s.key for s in made.sessions]
    assert len(set(uids)) == len(uids)
    assert len(set(keys)) == len(keys)
    assert all(uid.endswith(f"@{UID_DOMAIN}") for uid in uids)


def test_uid_depends_on_the_logical_session_not_on_preferences() -> None:
    morning = plan(plan_request(prefs=preferences(session_time="07:00")))
    all_day = plan(plan_request(prefs=preferences(run_days=("TU", "TH", "SA"))))
    by_key = {s.key: s.uid for s in morning.sessions}
    shared = [s for s in all_day.sessions if s.key in by_key]
    assert shared
    assert all(by_key[s.key] == s.uid for s in shared)
