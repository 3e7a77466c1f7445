"""Clinical-safety refusals of a plan request: a diagnosis in the future, and risk
factors that contradict the risk assessment."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime, timedelta

import pytest

from planner.domain import InvalidRequest, make_plan
from planner.domain.model import EnergyAvailability, RiskAssessment
from planner.domain.planning import local_date, validate_request
from planner.domain.risk import contradictions
from tests.builders import (
    CREATED_AT,
    DIAGNOSIS_DATE,
    PLAN_ID,
    plan,
    plan_request,
    preferences,
    shipped_catalog,
)

# ----------------------------------------------------------------------------- future diagnosis


def test_a_diagnosis_after_today_is_refused_naming_the_field() -> None:
    today = DIAGNOSIS_DATE - timedelta(days=1)
    with pytest.raises(InvalidRequest) as refused:
        validate_request(plan_request(), today=today)
    assert list(refused.value.errors) == ["diagnosis_date"]
    (message,) = refused.value.errors["diagnosis_date"]
    assert message.startswith(f"{DIAGNOSIS_DATE.isoformat()} is in the future")
    assert today.isoformat() in message


def test_make_plan_refuses_it_too() -> None:
    with pytest.raises(InvalidRequest) as refused:
        make_plan(
            plan_request(),
            shipped_catalog(),
            plan_id=PLAN_ID,
            created_at=CREATED_AT,
            today=DIAGNOSIS_DATE - timedelta(days=3),
        )
    assert "is in the future" in refused.value.errors["diagnosis_date"][0]


def test_a_diagnosis_today_or_earlier_and_a_start_in_the_future_are_fine() -> None:
    request = plan_request(start_date=DIAGNOSIS_DATE + timedelta(days=30))
    validate_request(request, today=DIAGNOSIS_DATE)
    validate_request(request, today=DIAGNOSIS_DATE + timedelta(days=400))


def test_without_today_there_is_no_clock_and_no_check() -> None:
    """Re-making a stored plan passes no today: its date was checked when it was made."""
    assert plan(diagnosis_date=date(2099, 1, 5)).request.diagnosis_date == date(2099, 1, 5)


def test_other_refusals_of_the_diagnosis_date_are_kept() -> None:
    request = plan_request(diagnosis_date=date(8999, 12, 31), start_date=date(9001, 1, 1))
    with pytest.raises(InvalidRequest) as refused:
        validate_request(request, today=date(2027, 1, 4))
    assert refused.value.errors["diagnosis_date"][0] == "Out of range."
    assert "is in the future" in refused.value.errors["diagnosis_date"][1]


@pytest.mark.parametrize(
    ("moment", "timezone", "expected"),
    [
        (datetime(2026, 12, 2, 3, tzinfo=UTC), "UTC", date(2026, 12, 2)),
        (datetime(2026, 12, 2, 3, tzinfo=UTC), "America/New_York", date(2026, 12, 1)),
        (datetime(2026, 12, 2, 12, tzinfo=UTC), "Pacific/Auckland", date(2026, 12, 3)),
        (datetime(2026, 12, 2, 3, tzinfo=UTC), "Mars/Olympus", None),
    ],
)
def test_today_is_the_local_date_in_the_plans_time_zone(
    moment: datetime, timezone: str, expected: date | None
) -> None:
    assert local_date(moment, timezone) == expected


def test_the_local_date_decides_what_is_in_the_future() -> None:
    late_evening_in_new_york = datetime(2027, 1, 4, 3, tzinfo=UTC)  # 22:00 on 3 January
    new_york = plan_request(prefs=preferences(timezone="America/New_York"))
    with pytest.raises(InvalidRequest):
        validate_request(new_york, today=local_date(late_evening_in_new_york, "America/New_York"))
    utc = replace(new_york, preferences=preferences(timezone="UTC"))
    validate_request(utc, today=local_date(late_evening_in_new_york, "UTC"))


# ----------------------------------------------------------------------------- risk contradictions

CONTRADICTIONS = [
    pytest.param(
        "prior_bone_stress_injury",
        RiskAssessment(prior_bsi_count=0),
        "risk_assessment.prior_bsi_count",
        id="prior-bsi-vs-count-0",
    ),
    pytest.param(
        "low_energy_availability",
        RiskAssessment(energy_availability=EnergyAvailability.ADEQUATE),
        "risk_assessment.energy_availability",
        id="low-ea-vs-adequate",
    ),
    pytest.param(
        "low_bone_density",
        RiskAssessment(bmd_z_score=0.4),
        "risk_assessment.bmd_z_score",
        id="low-bmd-vs-normal-z",
    ),
]


@pytest.mark.parametrize(("factor", "assessment", "answer"), CONTRADICTIONS)
def test_a_risk_factor_the_assessment_contradicts_is_refused_naming_both(
    factor: str, assessment: RiskAssessment, answer: str
) -> None:
    request = replace(plan_request(risk_factors=[factor]), risk_assessment=assessment)
    with pytest.raises(InvalidRequest) as refused:
        validate_request(request, today=DIAGNOSIS_DATE)
    errors = refused.value.errors
    assert set(errors) == {"risk_factors", answer}
    assert factor in errors["risk_factors"][0] and answer in errors["risk_factors"][0]
    assert factor in errors[answer][0]


def test_every_contradiction_is_named_at_once() -> None:
    request = replace(
        plan_request(risk_factors=["prior_bone_stress_injury", "low_bone_density"]),
        risk_assessment=RiskAssessment(prior_bsi_count=0, bmd_z_score=-0.5),
    )
    errors = contradictions(request.risk_factors, request.risk_assessment)
    assert set(errors) == {
        "risk_factors",
        "risk_assessment.prior_bsi_count",
        "risk_assessment.bmd_z_score",
    }
    assert len(errors["risk_factors"]) == 2


@pytest.mark.parametrize(
    ("factors", "assessment"),
    [
        (["prior_bone_stress_injury"], RiskAssessment(prior_bsi_count=1)),
        (["prior_bone_stress_injury"], RiskAssessment()),  # not assessed: nothing to contradict
        ([], RiskAssessment(prior_bsi_count=0, energy_availability=EnergyAvailability.ADEQUATE)),
        (
            ["low_energy_availability"],
            RiskAssessment(energy_availability=EnergyAvailability.SOME_RESTRICTION),
        ),
        (["low_bone_density"], RiskAssessment(bmd_z_score=-1.0)),  # the edge of the low range
        (["low_bone_density"], RiskAssessment(bmd_z_score=-2.3)),
        (["menstrual_irregularity"], RiskAssessment(menses_last_12_months=12)),
        (["female", "prior_bone_stress_injury"], None),
        # a factor left out is not a "no": the count may say more than the list
        ([], RiskAssessment(prior_bsi_count=3, prior_high_risk_bsi=True)),
    ],
)
def test_answers_that_agree_or_say_more_are_fine(
    factors: list[str], assessment: RiskAssessment | None
) -> None:
    request = replace(plan_request(risk_factors=factors), risk_assessment=assessment)
    assert contradictions(request.risk_factors, request.risk_assessment) == {}
    validate_request(request, today=DIAGNOSIS_DATE)


def test_a_stored_plan_with_a_contradiction_still_re_makes() -> None:
    """Only new requests (a ``today``) are refused, so plans stored before the rule replay."""
    request = replace(
        plan_request(risk_factors=["prior_bone_stress_injury"]),
        risk_assessment=RiskAssessment(prior_bsi_count=0),
    )
    assert plan(request).request == request
