"""A4: risk factors add a bone-health referral and a clearance review; NSAIDs always."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from planner.domain import Plan, RiskFactor, SessionKind
from planner.domain.model import Severity
from tests.builders import injury, plan, sessions

BONE_HEALTH_FACTORS = [
    "prior_bone_stress_injury",
    "low_energy_availability",
    "menstrual_irregularity",
    "low_bone_density",
]


def _clearance_reviews(made: Plan) -> list[Any]:
    return [s for s in sessions(made, kind=SessionKind.REVIEW) if "clearance" in s.title.lower()]


@pytest.mark.parametrize("factor", BONE_HEALTH_FACTORS)
def test_bone_health_factor_adds_referral_alert(factor: str) -> None:
    made = plan(risk_factors=[factor])
    referral = [a for a in made.alerts if a.code == "bone_health_referral"]
    assert len(referral) == 1
    assert referral[0].severity is Severity.WARNING
    assert factor.replace("_", " ") in referral[0].message


@pytest.mark.parametrize("factor", BONE_HEALTH_FACTORS)
@pytest.mark.parametrize("fields", [{"fracture_line": True}, {}])
def test_bone_health_factor_adds_clearance_review_the_day_before_graded_running(
    factor: str, fields: dict[str, Any]
) -> None:
    made = plan(injury_=injury(**fields), risk_factors=[factor])
    reviews = _clearance_reviews(made)
    assert len(reviews) == 1
    review = reviews[0]
    assert review.date == made.phase("graded_running").start_date - timedelta(days=1)
    assert review.start is None
    assert made.expected_return_to_run_date is not None
    assert review.date < made.expected_return_to_run_date
    assert review.notes


def test_several_bone_health_factors_give_one_alert_and_one_review() -> None:
    made = plan(risk_factors=BONE_HEALTH_FACTORS + ["female"])
    assert [a.code for a in made.alerts].count("bone_health_referral") == 1
    assert len(_clearance_reviews(made)) == 1
    message = next(a.message for a in made.alerts if a.code == "bone_health_referral")
    assert all(f.replace("_", " ") in message for f in BONE_HEALTH_FACTORS)


def test_female_alone_adds_no_referral_and_no_review() -> None:
    made = plan(risk_factors=["female"])
    baseline = plan()
    assert [a.code for a in made.alerts] == ["avoid_nsaids"]
    assert _clearance_reviews(made) == []
    assert [(s.key, s.date) for s in made.sessions] == [(s.key, s.date) for s in baseline.sessions]


def test_no_risk_factors_add_no_clearance_review() -> None:
    assert _clearance_reviews(plan()) == []


def test_risk_factors_do_not_move_the_dates() -> None:
    plain, flagged = plan(), plan(risk_factors=["low_bone_density"])
    assert plain.phases == flagged.phases
    assert plain.expected_return_to_run_date == flagged.expected_return_to_run_date


@pytest.mark.parametrize(
    "fields",
    [
        pytest.param({}, id="conservative"),
        pytest.param({"type": "tension"}, id="urgent-referral"),
        pytest.param({"hip_effusion": True}, id="compression-referral"),
        pytest.param({"displaced": True}, id="emergency"),
    ],
)
@pytest.mark.parametrize("factors", [(), ("female",), ("low_energy_availability",)])
def test_every_plan_advises_avoiding_nsaids(fields: dict[str, Any], factors: tuple[str]) -> None:
    made = plan(injury_=injury(**fields), risk_factors=factors)
    codes = [a.code for a in made.alerts]
    assert codes.count("avoid_nsaids") == 1
    assert codes[-1] == "avoid_nsaids"
    advice = made.alerts[-1]
    assert "NSAID" in advice.message
    assert "ibuprofen" in advice.message  # names examples, recommends no drug


def test_surgical_plan_with_a_bone_health_factor_keeps_the_referral_alert() -> None:
    made = plan(injury_=injury(type="tension"), risk_factors=["menstrual_irregularity"])
    assert [a.code for a in made.alerts] == [
        "urgent_surgical_referral",
        "bone_health_referral",
        "avoid_nsaids",
    ]
    assert not [s for s in made.sessions if s.kind.is_running]


def test_risk_factor_vocabulary_is_stable() -> None:
    assert {f.value for f in RiskFactor} == {"female", *BONE_HEALTH_FACTORS}
