"""Female Athlete Triad Cumulative Risk Assessment (domain.md Part B §6.2 [R28]):
every row and threshold of the 2014 table, the DXA criteria, and the plan effects."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from typing import Any

import pytest

from planner.domain import InvalidRequest, Plan, SessionKind, classify
from planner.domain.model import (
    Clearance,
    EnergyAvailability,
    Injury,
    RiskAssessment,
    Severity,
    TriadRisk,
)
from planner.domain.planning import planning_context
from planner.domain.progress import CheckIn, Gate, revise
from planner.domain.triad import FIELDS, apply_clearance, assess
from tests.builders import CREATED_AT, injury, plan, plan_request, running, shipped_catalog

ED = EnergyAvailability.EATING_DISORDER
SOME = EnergyAvailability.SOME_RESTRICTION
#: A low-risk cortical site: its injury scores 1 point on its own.
CORTICAL = classify(site="tibia_posteromedial")
#: The femoral neck: trabecular, 2 points on its own.
NECK = injury(fracture_line=True)


def points(row: str, assessment: RiskAssessment, at: Injury = CORTICAL) -> int:
    found = next(f for f in assess(assessment, at).factors if f.factor == row)
    return found.points


# ------------------------------------------------------------------ each row, each threshold


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (EnergyAvailability.ADEQUATE, 0),
        (SOME, 1),
        (ED, 2),
    ],
)
def test_energy_availability_row(value: EnergyAvailability, expected: int) -> None:
    assert points("low_energy_availability", RiskAssessment(energy_availability=value)) == expected


@pytest.mark.parametrize(
    ("bmi", "expected"),
    [(25.0, 0), (18.5, 0), (18.49, 1), (18.0, 1), (17.51, 1), (17.5, 2), (16.0, 2), (14.0, 2)],
)
def test_bmi_row_thresholds(bmi: float, expected: int) -> None:
    """0: BMI ≥ 18.5; 1: 17.5 < BMI < 18.5; 2: BMI ≤ 17.5."""
    assert points("low_bmi", RiskAssessment(bmi=bmi)) == expected


@pytest.mark.parametrize(
    ("loss", "expected"),
    [(0.0, 0), (4.9, 0), (5.0, 1), (9.9, 1), (10.0, 2), (15.0, 2)],
)
def test_weight_loss_in_the_bmi_row(loss: float, expected: int) -> None:
    """1: 5 to < 10 % weight loss in a month; 2: ≥ 10 %."""
    assert points("low_bmi", RiskAssessment(weight_loss_pct_month=loss)) == expected


@pytest.mark.parametrize(
    ("bmi", "loss", "expected"),
    [(20.0, 12.0, 2), (17.0, 0.0, 2), (18.0, 6.0, 1), (20.0, 6.0, 1), (18.0, 12.0, 2)],
)
def test_bmi_row_takes_the_worse_of_bmi_and_weight_loss(
    bmi: float, loss: float, expected: int
) -> None:
    assessment = RiskAssessment(bmi=bmi, weight_loss_pct_month=loss)
    assert points("low_bmi", assessment) == expected


@pytest.mark.parametrize(
    ("age", "expected"), [(11.0, 0), (14.9, 0), (15.0, 1), (15.9, 1), (16.0, 2), (18.0, 2)]
)
def test_delayed_menarche_row(age: float, expected: int) -> None:
    """0: < 15 y; 1: 15 to < 16 y; 2: ≥ 16 y."""
    assert points("delayed_menarche", RiskAssessment(menarche_age=age)) == expected


@pytest.mark.parametrize(("menses", "expected"), [(13, 0), (10, 0), (9, 1), (6, 1), (5, 2), (0, 2)])
def test_oligomenorrhoea_amenorrhoea_row(menses: int, expected: int) -> None:
    """0: > 9 in 12 months; 1: 6–9; 2: < 6."""
    row = "oligomenorrhoea_amenorrhoea"
    assert points(row, RiskAssessment(menses_last_12_months=menses)) == expected


@pytest.mark.parametrize(
    ("z", "expected"),
    [(1.0, 0), (-1.0, 0), (-1.01, 1), (-1.5, 1), (-1.99, 1), (-2.0, 2), (-3.0, 2)],
)
def test_low_bmd_row(z: float, expected: int) -> None:
    """0: Z ≥ −1.0; 1: −1.0 > Z > −2.0; 2: Z ≤ −2.0."""
    assert points("low_bmd", RiskAssessment(bmd_z_score=z)) == expected


@pytest.mark.parametrize(
    ("site", "prior", "prior_high_risk", "expected"),
    [
        # the current injury counts: one injury at a low-risk cortical site is 1 point
        ("tibia_posteromedial", None, None, 1),
        ("tibia_posteromedial", 0, False, 1),
        ("fibula", 0, None, 1),
        ("metatarsal_shaft", None, None, 1),
        ("femoral_shaft", None, None, 1),
        ("calcaneus", None, None, 1),  # cortical for the CRA (not in R28's list)
        # ≥ 2 including this one, or a prior injury at a high-risk/trabecular site: 2
        ("tibia_posteromedial", 1, None, 2),
        ("tibia_posteromedial", 1, False, 2),
        ("fibula", 3, None, 2),
        ("tibia_posteromedial", 1, True, 2),
        # a trabecular or high-risk site scores 2 by itself
        ("femoral_neck", None, None, 2),
        ("pubic_ramus", None, None, 2),  # pelvis: trabecular
        ("femoral_head", None, None, 2),
        ("navicular", 0, None, 2),
        ("tibia_anterior", None, None, 2),
    ],
)
def test_stress_reaction_fracture_row_counts_the_current_injury(
    site: str, prior: int | None, prior_high_risk: bool | None, expected: int
) -> None:
    at = classify(site=site, type="compression" if site == "femoral_neck" else None)
    assessment = RiskAssessment(prior_bsi_count=prior, prior_high_risk_bsi=prior_high_risk)
    assert points("stress_reaction_fracture", assessment, at) == expected


def test_a_femoral_neck_injury_alone_scores_two() -> None:
    result = assess(RiskAssessment(), NECK)
    assert result.score == 2
    assert result.risk_level is TriadRisk.MODERATE
    assert result.clearance is Clearance.PROVISIONAL


def test_missing_answers_score_zero_and_are_listed_as_not_assessed() -> None:
    result = assess(RiskAssessment(bmi=21.0), CORTICAL)
    assert result.score == 1
    assert result.not_assessed == tuple(f for f in FIELDS if f != "bmi")
    assessed = {f.factor: f.assessed for f in result.factors}
    assert assessed == {
        "low_energy_availability": False,
        "low_bmi": True,
        "delayed_menarche": False,
        "oligomenorrhoea_amenorrhoea": False,
        "low_bmd": False,
        "stress_reaction_fracture": True,  # the current injury is always known
    }
    assert all(f.points == 0 for f in result.factors if not f.assessed)


def test_every_answer_given_lists_nothing_as_not_assessed() -> None:
    full = RiskAssessment(
        energy_availability=EnergyAvailability.ADEQUATE,
        bmi=21.0,
        weight_loss_pct_month=0.0,
        menarche_age=13.0,
        menses_last_12_months=12,
        bmd_z_score=0.2,
        prior_bsi_count=0,
        prior_high_risk_bsi=False,
    )
    result = assess(full, CORTICAL)
    assert result.not_assessed == ()
    assert result.score == 1


# ------------------------------------------------------------------ totals


@pytest.mark.parametrize(
    ("assessment", "score", "risk", "clearance"),
    [
        (RiskAssessment(), 1, TriadRisk.LOW, Clearance.FULL),
        (RiskAssessment(energy_availability=SOME), 2, TriadRisk.MODERATE, Clearance.PROVISIONAL),
        (
            RiskAssessment(energy_availability=ED, menarche_age=15.5, menses_last_12_months=7),
            5,
            TriadRisk.MODERATE,
            Clearance.PROVISIONAL,
        ),
        (
            RiskAssessment(energy_availability=ED, menarche_age=16.0, menses_last_12_months=7),
            6,
            TriadRisk.HIGH,
            Clearance.RESTRICTED,
        ),
        (
            RiskAssessment(
                energy_availability=ED,
                bmi=17.0,
                menarche_age=16.5,
                menses_last_12_months=2,
                bmd_z_score=-2.5,
                prior_bsi_count=2,
            ),
            12,
            TriadRisk.HIGH,
            Clearance.RESTRICTED,
        ),
    ],
)
def test_score_bands(
    assessment: RiskAssessment, score: int, risk: TriadRisk, clearance: Clearance
) -> None:
    """0–1 low → full; 2–5 moderate → provisional/limited; ≥ 6 high → restricted."""
    result = assess(assessment, CORTICAL)
    assert (result.score, result.risk_level, result.clearance) == (score, risk, clearance)
    assert result.score == sum(f.points for f in result.factors)


def test_eating_disorder_with_bmi_below_16_is_categorically_restricted() -> None:
    result = assess(RiskAssessment(energy_availability=ED, bmi=15.9), CORTICAL)
    assert result.score == 5  # moderate by points …
    assert result.risk_level is TriadRisk.MODERATE
    assert result.clearance is Clearance.RESTRICTED  # … but restricted regardless
    assert result.categorical_restriction and "15.9" in result.categorical_restriction


@pytest.mark.parametrize(
    "assessment",
    [
        RiskAssessment(energy_availability=ED, bmi=16.0),
        RiskAssessment(energy_availability=SOME, bmi=15.0),
        RiskAssessment(bmi=15.0),
    ],
)
def test_no_categorical_restriction_without_both_conditions(assessment: RiskAssessment) -> None:
    result = assess(assessment, CORTICAL)
    assert result.categorical_restriction is None
    assert result.clearance is Clearance.PROVISIONAL


def test_prior_high_risk_injury_with_no_prior_injury_is_refused() -> None:
    with pytest.raises(InvalidRequest) as caught:
        assess(RiskAssessment(prior_bsi_count=0, prior_high_risk_bsi=True), CORTICAL)
    assert list(caught.value.errors) == ["risk_assessment.prior_high_risk_bsi"]


# ------------------------------------------------------------------ DXA and referrals


@pytest.mark.parametrize(
    ("assessment", "at", "indicated"),
    [
        (RiskAssessment(), NECK, True),  # one high-risk/trabecular stress injury
        (RiskAssessment(), CORTICAL, False),  # one stress injury: a single moderate criterion
        (RiskAssessment(prior_bsi_count=1), CORTICAL, True),  # ≥ 2 stress injuries
        (RiskAssessment(energy_availability=SOME), CORTICAL, True),  # 2 moderate criteria
        (RiskAssessment(energy_availability=ED), CORTICAL, True),
        (RiskAssessment(bmi=17.5), CORTICAL, True),
        (RiskAssessment(bmi=18.0), CORTICAL, True),  # BMI 17.5–18.5 + 1 injury
        (RiskAssessment(menarche_age=16.0), CORTICAL, True),
        (RiskAssessment(menarche_age=15.5), CORTICAL, True),
        (RiskAssessment(menses_last_12_months=5), CORTICAL, True),
        (RiskAssessment(menses_last_12_months=8), CORTICAL, True),
        (RiskAssessment(menses_last_12_months=9), CORTICAL, False),  # 6–8 for DXA
        (RiskAssessment(bmd_z_score=-2.1), CORTICAL, True),
        (RiskAssessment(bmd_z_score=-1.5), CORTICAL, True),
        (RiskAssessment(bmd_z_score=-1.0), CORTICAL, False),
        (RiskAssessment(weight_loss_pct_month=12.0), CORTICAL, False),  # not a DXA criterion
    ],
)
def test_dxa_indication(assessment: RiskAssessment, at: Injury, indicated: bool) -> None:
    """Any one high-risk criterion, or two or more moderate ones (§6.2 [R58])."""
    result = assess(assessment, at)
    assert result.dxa_indicated is indicated
    assert bool(result.dxa_reasons) is indicated


def test_referrals_follow_the_risk_and_disordered_eating() -> None:
    assert assess(RiskAssessment(), CORTICAL).referrals == ()
    assert assess(RiskAssessment(), NECK).referrals == ("sports_physician", "sports_dietitian")
    assert assess(RiskAssessment(energy_availability=SOME), CORTICAL).referrals == (
        "sports_physician",
        "sports_dietitian",
        "mental_health",
    )


# ------------------------------------------------------------------ effects on the plan


def made(assessment: RiskAssessment | None, at: Injury = NECK, **request: Any) -> Plan:
    return plan(replace(plan_request(at, **request), risk_assessment=assessment))


def _per_level(made_plan: Plan) -> list[int]:
    levels = [s.level for s in made_plan.sessions if s.phase == "graded_running" and s.level]
    return [levels.count(level) for level in sorted(set(levels))]


def test_plan_shows_the_assessment_and_none_without_one() -> None:
    assert made(None).triad is None
    result = made(RiskAssessment(energy_availability=SOME)).triad
    assert result is not None and result.score == 3


def test_low_risk_changes_nothing() -> None:
    without, low = made(None, CORTICAL), made(RiskAssessment(), CORTICAL)
    assert low.triad is not None and low.triad.clearance is Clearance.FULL
    assert low.phases == without.phases and low.sessions == without.sessions
    assert low.alerts == without.alerts


def test_moderate_risk_adds_a_clearance_review_and_one_more_session_per_level() -> None:
    without, moderate = made(None), made(RiskAssessment())
    reviews = [
        s
        for s in moderate.sessions
        if s.kind is SessionKind.REVIEW and "clearance" in s.title.lower()
    ]
    assert len(reviews) == 1
    assert reviews[0].date == moderate.phase("graded_running").start_date - timedelta(days=1)
    assert reviews[0].phase == "walking"
    assert _per_level(without)[:4] == [3, 3, 3, 3]
    assert _per_level(moderate)[:4] == [4, 4, 4, 4]  # the walk/run levels
    assert _per_level(moderate)[4] == _per_level(without)[4]  # the exit criterion is unchanged
    alert = next(a for a in moderate.alerts if a.code == "triad_clearance")
    assert alert.severity is Severity.WARNING and "score 2" in alert.message
    assert moderate.alerts[-1].code == "avoid_nsaids"


def test_moderate_risk_at_a_low_risk_site_needs_three_sessions_per_level() -> None:
    moderate = made(RiskAssessment(energy_availability=SOME), CORTICAL)
    assert _per_level(moderate)[:4] == [3, 3, 3, 3]
    assert _per_level(made(None, CORTICAL))[:4] == [2, 2, 2, 2]


@pytest.mark.parametrize(
    "assessment",
    [
        RiskAssessment(energy_availability=ED, menarche_age=16.0, menses_last_12_months=3),
        RiskAssessment(energy_availability=ED, bmi=15.0),  # categorical
    ],
)
def test_restricted_plan_schedules_no_running_and_says_why(assessment: RiskAssessment) -> None:
    restricted = made(assessment)
    assert not running(restricted)
    assert restricted.expected_return_to_run_date is None
    hold = restricted.phases[-1]
    assert hold.key == "medical_clearance"
    assert hold.start_date == restricted.phase("walking").end_date + timedelta(days=1)
    assert any("No running is scheduled" in g for g in hold.guidance)
    gate = [s for s in restricted.sessions if s.phase == "medical_clearance"]
    assert [s.kind for s in gate] == [SessionKind.REVIEW]
    alert = restricted.alerts[0]
    assert alert.code == "triad_restricted" and alert.severity is Severity.URGENT
    assert "No running is scheduled" in alert.message


def _gate_through(made_plan: Plan, until: str) -> Plan:
    """Record every review gate as met on its day, up to (not including) ``until``."""
    protocol = shipped_catalog().get(made_plan.protocol.id)
    context = planning_context(made_plan.request.injury, made_plan.selection)
    current = made_plan
    for key in [p.key for p in made_plan.phases]:
        if key == until:
            break
        phase = current.phase(key)
        if any(
            s.phase == key and s.kind is SessionKind.REVIEW and s.date == phase.end_date
            for s in current.sessions
        ):
            current, _ = revise(
                current,
                protocol,
                Gate(key, True, phase.end_date),
                context=context,
                today=phase.end_date,
                at=CREATED_AT,
            )
    return current


def test_a_clinician_gate_lifts_the_restriction() -> None:
    restricted = made(RiskAssessment(energy_availability=ED, bmi=15.0))
    waiting = _gate_through(restricted, "medical_clearance")
    assert not running(waiting)
    protocol = shipped_catalog().get(restricted.protocol.id)
    context = planning_context(restricted.request.injury, restricted.selection)
    cleared_on = waiting.phase("medical_clearance").end_date + timedelta(days=20)
    lifted, decision = revise(
        waiting,
        protocol,
        Gate("medical_clearance", True, cleared_on),
        context=context,
        today=cleared_on,
        at=CREATED_AT,
    )
    assert "Gate met" in decision.reason
    assert [p.key for p in lifted.phases][-2:] == ["graded_running", "return_to_training"]
    assert lifted.phase("graded_running").start_date == cleared_on + timedelta(days=1)
    assert running(lifted) and running(lifted)[0].date > cleared_on
    assert _per_level(lifted)[:4] == [4, 4, 4, 4]  # at best provisional after the gate


def test_unmet_clearance_gate_keeps_running_on_hold() -> None:
    waiting = _gate_through(
        made(RiskAssessment(energy_availability=ED, bmi=15.0)), "medical_clearance"
    )
    protocol = shipped_catalog().get(waiting.protocol.id)
    context = planning_context(waiting.request.injury, waiting.selection)
    on = waiting.phase("medical_clearance").end_date
    still, _ = revise(
        waiting,
        protocol,
        Gate("medical_clearance", False, on, extend_days=14),
        context=context,
        today=on,
        at=CREATED_AT,
    )
    assert not running(still)
    assert still.phases[-1].key == "medical_clearance"
    assert still.phases[-1].end_date == on + timedelta(days=14)


def test_check_ins_need_the_extra_session_before_the_level_advances() -> None:
    """Level advancement after check-ins uses the same +1 as the projection."""
    current = _gate_through(made(RiskAssessment()), "graded_running")
    protocol = shipped_catalog().get(current.protocol.id)
    context = planning_context(current.request.injury, current.selection)
    for index in range(4):
        session = running(current)[index]
        assert session.level == 1
        current, _ = revise(
            current,
            protocol,
            CheckIn(session_uid=session.uid),
            context=context,
            today=session.date,
            at=CREATED_AT,
        )
    assert running(current)[4].level == 2
    assert current.progress.templates[0].level == 1


def test_clearance_from_risk_factors_and_from_the_assessment_is_one_review() -> None:
    both = made(RiskAssessment(), risk_factors=["low_bone_density"])
    reviews = [s for s in both.sessions if s.key.split("/")[1] == "medical_clearance"]
    assert len(reviews) == 1
    assert {a.code for a in both.alerts} >= {"bone_health_referral", "triad_clearance"}


def test_risk_factor_flags_keep_working_without_an_assessment() -> None:
    flagged = made(None, risk_factors=["menstrual_irregularity"])
    assert flagged.triad is None
    assert [a.code for a in flagged.alerts] == ["bone_health_referral", "avoid_nsaids"]
    assert _per_level(flagged)[:4] == [3, 3, 3, 3]


def test_surgical_plan_reports_the_assessment_without_changing_sessions() -> None:
    tension = injury(type="tension")
    without, with_ = (
        made(None, tension),
        made(RiskAssessment(energy_availability=ED, bmi=15.0), tension),
    )
    assert with_.sessions == without.sessions and with_.phases == without.phases
    assert with_.triad is not None and with_.triad.clearance is Clearance.RESTRICTED
    assert "triad_restricted" in {a.code for a in with_.alerts}


def test_apply_clearance_is_idempotent() -> None:
    protocol = shipped_catalog().get("femoral-neck-compression-conservative")
    for clearance in ("provisional_limited", "restricted"):
        context = {"triad_clearance": clearance, "triad_score": 7, "fracture_line": True}
        once = apply_clearance(protocol, context)
        assert once != protocol
        assert apply_clearance(once, context) == once
    assert apply_clearance(protocol, {"triad_clearance": "full"}) is protocol
