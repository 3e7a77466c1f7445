"""Weekly running volume rises by at most 10 % a week, whatever the run days (domain.md A3).

The week is the 7-day block of ``return_to_training`` that sets its level (whole weeks
since the phase began); running minutes are :func:`running_minutes` (run steps only).
The first week of the build is its baseline; see the scheduling module's docstring.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import date, timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from planner.domain import Phase, Session, Weekday
from planner.domain.model import GateRecord, Progress, RiskAssessment
from planner.domain.planning import planning_context
from planner.domain.scheduling import running_minutes, schedule
from planner.domain.selection import select_protocol, triage
from tests.builders import injury, plan, plan_request, preferences, shipped_catalog

#: All 127 non-empty sets of run days.
RUN_DAY_SETS = [
    combo for size in range(1, 8) for combo in itertools.combinations(list(Weekday), size)
]
BUILD = "return_to_training"


@dataclass(frozen=True)
class Case:
    """A conservative plan to lay out: an injury, and what else shapes it."""

    name: str
    fields: dict[str, object]
    risk_factors: tuple[str, ...] = ()
    assessed: bool = False  # a Triad CRA (the femoral neck alone scores 2: provisional)
    gate: str | None = None  # a hold phase whose gate a clinician met on day 14

    def lay_out(
        self, run_days: Sequence[Weekday], start: date
    ) -> tuple[Sequence[Phase], Sequence[Session]]:
        request = plan_request(
            injury(**self.fields),
            diagnosis_date=start,
            risk_factors=self.risk_factors,
            prefs=preferences(run_days),
        )
        if self.assessed:
            request = replace(request, risk_assessment=RiskAssessment())
        if self.gate is None:
            made = plan(request)
            return made.phases, made.sessions
        selection, _ = triage(request.injury)
        protocol = select_protocol(request.injury, selection, shipped_catalog())
        progress = Progress(gates=(GateRecord(self.gate, True, start + timedelta(days=14)),))
        return schedule(
            protocol,
            planning_context(request.injury, selection),
            start,
            request.preferences,
            "plan-0001",
            progress=progress,
        )


FEMORAL_NECK = {"fracture_line": True}
CASES = [
    Case("femoral neck, fracture line", FEMORAL_NECK),
    Case("femoral neck, oedema only", {}),
    Case("femoral neck, bone-health risk factor", FEMORAL_NECK, ("prior_bone_stress_injury",)),
    Case("femoral neck, Triad provisional", FEMORAL_NECK, assessed=True),
    *(
        Case(f"low-risk {site}", {"site": site, "type": None})
        for site in (
            "tibia_posteromedial",
            "fibula",
            "metatarsal_shaft",
            "calcaneus",
            "pubic_ramus",
            "femoral_shaft",
        )
    ),
    Case("low-risk fibula, fracture line", {"site": "fibula", "type": None, "fracture_line": True}),
    Case(
        "high-risk patella after the specialist's gate",
        {"site": "patella", "type": None},
        gate="specialist_referral",
    ),
]


def weekly_volumes(phases: Sequence[Phase], sessions: Sequence[Session]) -> list[int]:
    """Running minutes in each 7-day block of the continuous-running build."""
    build = next(p for p in phases if p.key == BUILD)
    weeks = ((build.end_date - build.start_date).days + 1 + 6) // 7
    volumes = [0] * weeks
    for s in sessions:
        if s.phase == BUILD:
            volumes[(s.date - build.start_date).days // 7] += running_minutes(s)
    return volumes


def assert_capped(volumes: Sequence[int], label: str) -> None:
    assert all(volumes), f"{label}: a week without running {volumes}"
    for week, (before, after) in enumerate(itertools.pairwise(volumes), start=1):
        assert after * 10 <= before * 11, f"{label}: week {week} {before} → {after} min ({volumes})"


def test_the_protocols_tested_here_are_every_conservative_running_build() -> None:
    """Every protocol in the catalog that builds continuous running weekly is covered."""
    covered = set()
    for case in CASES:
        request = plan_request(injury(**case.fields))
        selection, _ = triage(request.injury)
        covered.add(select_protocol(request.injury, selection, shipped_catalog()).id)
    weekly = {
        p.id
        for p in shipped_catalog()
        if any(t.advance == "weekly" and t.kind.is_running for ph in p.phases for t in ph.sessions)
    }
    assert weekly <= covered, weekly - covered


def test_seven_run_days_build_by_at_most_10_percent_a_week() -> None:
    """Before the cap: 90 → 132 → 108 → 156 → 126 → 180 minutes (4 runs one week, 3 the next)."""
    seven = plan(prefs=preferences(list(Weekday)))
    assert weekly_volumes(seven.phases, seven.sessions) == [90, 99, 108, 117, 126, 135, 135, 135]


def test_the_default_run_days_are_unchanged() -> None:
    default = plan()
    assert weekly_volumes(default.phases, default.sessions) == [
        90,
        99,
        108,
        117,
        126,
        135,
        135,
        135,
    ]


def test_running_minutes_count_the_run_steps_only() -> None:
    graded = [s for s in plan().sessions if s.phase == "graded_running"]
    by_level = {s.level: running_minutes(s) for s in graded if s.kind.is_running}
    assert by_level == {1: 5, 2: 10, 3: 15, 4: 20, 5: 30}
    assert {running_minutes(s) for s in graded if not s.kind.is_running} == {0}


def test_the_cap_leaves_out_whole_runs_and_keeps_the_level_lengths() -> None:
    made = plan(prefs=preferences(list(Weekday)))
    runs = [s for s in made.sessions if s.phase == BUILD and s.kind.is_running]
    build = next(p for p in made.phases if p.key == BUILD)
    for s in runs:
        assert s.duration_min == 30 + 3 * min((s.date - build.start_date).days // 7, 5)
    assert all(b.date - a.date >= timedelta(days=2) for a, b in itertools.pairwise(runs))


def test_every_run_day_set_and_start_weekday_is_capped() -> None:
    """Exhaustive: all 127 run-day sets × the 7 start weekdays, for the main protocols."""
    for case in (CASES[0], CASES[1], CASES[4]):
        for run_days, offset in itertools.product(RUN_DAY_SETS, range(7)):
            start = date(2027, 1, 4) + timedelta(days=offset)
            label = f"{case.name}, {'/'.join(d.value for d in run_days)}, from {start}"
            assert_capped(weekly_volumes(*case.lay_out(run_days, start)), label)


@pytest.mark.parametrize("run_days", RUN_DAY_SETS, ids=lambda days: "".join(d.value for d in days))
@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    start=st.dates(min_value=date(2020, 1, 1), max_value=date(2035, 12, 31)),
    case=st.sampled_from(CASES),
)
def test_weekly_running_volume_never_rises_more_than_10_percent(
    run_days: tuple[Weekday, ...], start: date, case: Case
) -> None:
    phases, sessions = case.lay_out(run_days, start)
    assert_capped(weekly_volumes(phases, sessions), f"{case.name} from {start}")
    runs = [s for s in sessions if s.kind.is_running]
    assert {s.date.weekday() for s in runs} <= {d.iso_index for d in run_days}
    assert all(b.date - a.date > timedelta(days=1) for a, b in itertools.pairwise(runs))


def test_the_capped_layout_is_deterministic() -> None:
    seven = preferences(list(Weekday))
    assert plan(prefs=seven) == plan(prefs=seven)
