"""A femoral head with a hip-joint effusion: the urgency and crutch advice of the
femoral neck's high-risk findings (domain.md A2 rule 3), on the specialist's protocol."""

from __future__ import annotations

import pytest

from planner.domain import Triage, classify
from planner.domain.model import Severity
from planner.domain.selection import SURGICAL_ALERT, triage
from tests.builders import plan, plan_request


def _alerts(**fields: object) -> tuple[str, ...]:
    return tuple(a.code for a in triage(classify(**fields))[1])


def test_a_femoral_head_effusion_gets_the_femoral_necks_urgent_alert() -> None:
    selection, alerts = triage(classify(site="femoral_head", hip_effusion=True))
    neck_selection, neck_alerts = triage(
        classify(site="femoral_neck", type="compression", hip_effusion=True)
    )
    assert neck_selection.triage is Triage.URGENT_SURGICAL_REFERRAL
    (alert,) = alerts
    (neck_alert,) = neck_alerts
    assert neck_alert == SURGICAL_ALERT
    assert (alert.code, alert.severity) == (neck_alert.code, neck_alert.severity)
    assert alert.severity is Severity.URGENT
    for advice in ("Strict non-weight-bearing on crutches", "same-day orthopaedic assessment"):
        assert advice in alert.message and advice in neck_alert.message
    # Still the specialist's protocol (no surgical protocol covers the femoral head).
    assert selection.triage is Triage.SPECIALIST_REFERRAL and selection.rule == 5
    assert any("same-day orthopaedic assessment" in r for r in selection.reasons)


@pytest.mark.parametrize(
    "fields",
    [
        {"site": "femoral_head"},
        {"site": "femoral_head", "hip_effusion": False},
        {"site": "femoral_head", "progression_on_imaging": True},
    ],
)
def test_a_femoral_head_without_an_effusion_keeps_the_specialist_warning(
    fields: dict[str, object],
) -> None:
    assert _alerts(**fields) == ("specialist_referral",)


def test_emergency_findings_still_win() -> None:
    assert _alerts(site="femoral_head", hip_effusion=True, can_bear_weight=False) == (
        "emergency_care",
    )


def test_the_plan_carries_the_urgent_alert_first_and_no_running() -> None:
    made = plan(plan_request(classify(site="femoral_head", hip_effusion=True)))
    assert made.alerts[0].code == "urgent_surgical_referral"
    assert made.alerts[0].severity is Severity.URGENT
    assert made.alerts[-1].code == "avoid_nsaids"
    assert [p.key for p in made.phases] == ["specialist_referral"]
    assert not [s for s in made.sessions if s.kind.is_running or s.kind == "walk"]
    assert set(made.alerts[0].references) <= {r.key for r in made.protocol.references}
