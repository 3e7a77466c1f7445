"""A2: triage rules in order, their alerts, and the protocol each outcome selects."""

from __future__ import annotations

from typing import Any

import pytest

from planner.domain import NoMatchingProtocol, Pathway, SessionKind, Triage
from planner.domain.model import Severity
from planner.domain.selection import select_protocol, triage
from tests.builders import CONSERVATIVE_ID, SURGICAL_ID, injury, plan, plan_request

#: One classification per surgical route through the rules, with the rule that fires.
SURGICAL_CASES = [
    pytest.param({"displaced": True}, 1, Triage.EMERGENCY_CARE, id="displaced"),
    pytest.param({"can_bear_weight": False}, 1, Triage.EMERGENCY_CARE, id="cannot-bear-weight"),
    pytest.param({"type": "tension"}, 2, Triage.URGENT_SURGICAL_REFERRAL, id="tension"),
    pytest.param({"complete": True}, 3, Triage.URGENT_SURGICAL_REFERRAL, id="complete"),
    pytest.param({"fracture_line_pct": 50}, 3, Triage.URGENT_SURGICAL_REFERRAL, id="pct-50"),
    pytest.param({"hip_effusion": True}, 3, Triage.URGENT_SURGICAL_REFERRAL, id="effusion"),
    pytest.param(
        {"progression_on_imaging": True}, 3, Triage.URGENT_SURGICAL_REFERRAL, id="progression"
    ),
]


def _triage(**fields: Any) -> tuple[Any, tuple[Any, ...]]:
    return triage(injury(**fields))


def _reasons(selection: Any) -> str:
    assert selection.reasons, "a triage decision must say why"
    return " ".join(selection.reasons)


# ------------------------------------------------------------------ rule 1


def test_displaced_fracture_goes_to_emergency_care() -> None:
    selection, alerts = _triage(displaced=True)
    assert (selection.rule, selection.triage) == (1, Triage.EMERGENCY_CARE)
    assert selection.pathway is Pathway.SURGICAL_REFERRAL
    assert [a.code for a in alerts] == ["emergency_care"]
    assert alerts[0].severity is Severity.URGENT
    assert "displaced" in _reasons(selection)


def test_leg_that_cannot_bear_weight_goes_to_emergency_care() -> None:
    selection, alerts = _triage(can_bear_weight=False)
    assert (selection.rule, selection.triage) == (1, Triage.EMERGENCY_CARE)
    assert [a.code for a in alerts] == ["emergency_care"]
    assert "cannot bear weight" in _reasons(selection)


def test_displaced_and_unable_to_bear_weight_names_both_findings() -> None:
    selection, _ = _triage(displaced=True, can_bear_weight=False)
    assert selection.rule == 1
    assert len(selection.reasons) == 2


def test_displaced_tension_side_is_emergency_not_urgent_referral() -> None:
    selection, alerts = _triage(type="tension", displaced=True)
    assert (selection.rule, selection.triage) == (1, Triage.EMERGENCY_CARE)
    assert [a.code for a in alerts] == ["emergency_care"]


def test_emergency_rule_wins_over_compression_high_risk_findings() -> None:
    selection, _ = _triage(can_bear_weight=False, hip_effusion=True, fracture_line_pct=80)
    assert (selection.rule, selection.triage) == (1, Triage.EMERGENCY_CARE)


# ------------------------------------------------------------------ rule 2


def test_tension_side_goes_to_urgent_surgical_referral() -> None:
    selection, alerts = _triage(type="tension")
    assert (selection.rule, selection.triage) == (2, Triage.URGENT_SURGICAL_REFERRAL)
    assert selection.pathway is Pathway.SURGICAL_REFERRAL
    assert [a.code for a in alerts] == ["urgent_surgical_referral"]
    assert alerts[0].severity is Severity.URGENT
    assert "tension" in _reasons(selection)


def test_tension_side_with_oedema_only_is_still_urgent_referral() -> None:
    selection, _ = _triage(type="tension", mri_grade=1, fracture_line=False)
    assert (selection.rule, selection.triage) == (2, Triage.URGENT_SURGICAL_REFERRAL)


def test_tension_rule_comes_before_the_compression_rule() -> None:
    selection, _ = _triage(type="tension", hip_effusion=True, fracture_line_pct=70)
    assert selection.rule == 2


# ------------------------------------------------------------------ rule 3


@pytest.mark.parametrize(
    ("fields", "finding"),
    [
        pytest.param({"complete": True}, "complete", id="complete"),
        pytest.param({"fracture_line_pct": 100}, "complete", id="pct-100-is-complete"),
        pytest.param({"fracture_line_pct": 50}, "50%", id="pct-50"),
        pytest.param({"fracture_line_pct": 75}, "75%", id="pct-75"),
        pytest.param({"hip_effusion": True}, "effusion", id="hip-effusion"),
        pytest.param({"progression_on_imaging": True}, "progression", id="progression"),
    ],
)
def test_high_risk_compression_finding_goes_to_urgent_surgical_referral(
    fields: dict[str, Any], finding: str
) -> None:
    selection, alerts = _triage(**fields)
    assert (selection.rule, selection.triage) == (3, Triage.URGENT_SURGICAL_REFERRAL)
    assert [a.code for a in alerts] == ["urgent_surgical_referral"]
    assert finding in _reasons(selection)


def test_fracture_line_of_49_percent_is_conservative() -> None:
    selection, alerts = _triage(fracture_line_pct=49)
    assert (selection.rule, selection.triage) == (4, Triage.CONSERVATIVE)
    assert alerts == ()
    assert "49%" in _reasons(selection)


def test_fracture_line_of_50_percent_is_surgical() -> None:
    assert _triage(fracture_line_pct=50)[0].rule == 3


def test_every_high_risk_finding_is_named() -> None:
    selection, _ = _triage(fracture_line_pct=60, hip_effusion=True, progression_on_imaging=True)
    assert selection.rule == 3
    assert len(selection.reasons) == 3
    text = _reasons(selection)
    assert "60%" in text and "effusion" in text and "progression" in text


# ------------------------------------------------------------------ rule 4


@pytest.mark.parametrize(
    ("fields", "finding"),
    [
        pytest.param({}, "oedema without a fracture line", id="oedema-only"),
        pytest.param({"mri_grade": 3}, "oedema without a fracture line", id="grade-3"),
        pytest.param({"fracture_line": True}, "fracture line", id="line-unmeasured"),
        pytest.param({"mri_grade": 4, "fracture_line_pct": 20}, "20%", id="line-20"),
    ],
)
def test_plain_compression_side_injury_is_conservative(
    fields: dict[str, Any], finding: str
) -> None:
    selection, alerts = _triage(**fields)
    assert (selection.rule, selection.triage) == (4, Triage.CONSERVATIVE)
    assert selection.pathway is Pathway.CONSERVATIVE
    assert alerts == ()
    text = _reasons(selection)
    assert "compression" in text and finding in text


def test_reasons_name_the_rule_that_fired() -> None:
    for fields, rule in [
        ({"displaced": True}, 1),
        ({"type": "tension"}, 2),
        ({"hip_effusion": True}, 3),
        ({}, 4),
    ]:
        selection, _ = _triage(**fields)
        assert all(r.startswith(f"A2 rule {rule} ") for r in selection.reasons)


# ------------------------------------------------------------------ plans and protocols


def test_conservative_triage_selects_the_conservative_protocol() -> None:
    made = plan()
    assert made.pathway is Pathway.CONSERVATIVE
    assert made.protocol.id == CONSERVATIVE_ID
    assert made.protocol.version == "1.2.0"
    assert made.selection.rule == 4


@pytest.mark.parametrize(("fields", "rule", "outcome"), SURGICAL_CASES)
def test_surgical_plan_is_only_a_referral_with_no_walking_or_running(
    fields: dict[str, Any], rule: int, outcome: Triage
) -> None:
    made = plan(injury_=injury(**fields))
    assert made.pathway is Pathway.SURGICAL_REFERRAL
    assert (made.selection.rule, made.selection.triage) == (rule, outcome)
    assert made.protocol.id == SURGICAL_ID
    assert [p.key for p in made.phases] == ["surgical_referral"]
    day_zero = [s for s in made.sessions if s.date == made.start_date]
    assert [s.kind for s in day_zero] == [SessionKind.REVIEW]
    kinds = {s.kind for s in made.sessions}
    assert not kinds & {SessionKind.WALK, SessionKind.RUN_WALK, SessionKind.RUN}
    assert made.expected_return_to_run_date is None
    assert made.alerts[0].code == outcome.value


def test_emergency_day_zero_review_differs_from_the_urgent_referral() -> None:
    emergency = plan(injury_=injury(displaced=True))
    urgent = plan(injury_=injury(type="tension"))
    first_emergency, first_urgent = emergency.sessions[0], urgent.sessions[0]
    assert first_emergency.date == first_urgent.date == emergency.start_date
    assert first_emergency.title != first_urgent.title
    assert first_emergency.criteria != first_urgent.criteria
    assert "emergency" in first_emergency.title.lower()
    assert "orthopaedic" in first_urgent.title.lower()
    assert [a.code for a in emergency.alerts] == ["emergency_care", "avoid_nsaids"]
    assert [a.code for a in urgent.alerts] == ["urgent_surgical_referral", "avoid_nsaids"]


def test_conservative_plan_has_no_urgent_alert() -> None:
    made = plan()
    assert [a.code for a in made.alerts] == ["avoid_nsaids"]
    assert all(a.severity is not Severity.URGENT for a in made.alerts)


def test_no_matching_protocol_is_a_clear_error(catalog: Any) -> None:
    only_surgical = [p for p in catalog if p.id == SURGICAL_ID]
    with pytest.raises(NoMatchingProtocol) as caught:
        plan(plan_request(), catalog=only_surgical)
    assert "conservative" in caught.value.detail


def test_selection_does_not_depend_on_catalog_order(catalog: Any) -> None:
    found = injury(type="tension")
    selection, _ = triage(found)
    forward = select_protocol(found, selection, list(catalog))
    backward = select_protocol(found, selection, list(reversed(list(catalog))))
    assert forward is backward
