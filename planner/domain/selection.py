"""Triage a classification into a pathway, then pick the protocol that serves it.

The rules are domain.md A2, applied in order; the first that matches wins. The
reasons say which findings fired so a clinician can check the decision.

Sites other than the femoral neck (Part B §3) share rule 1 (displaced, or cannot bear
weight → emergency care) and then follow two site rules:

5. a high-risk site (§3.1), or any site that progresses on imaging or has not united
   (Kaeding–Miller V) → ``specialist_referral``: a specialist sets the protection,
   and no running is planned until a clinician records the referral's gate [R13][R23][R63];
6. otherwise (a low-risk site) → ``conservative`` [R22][R23][R63].

Rule 3 for the femoral neck also counts a non-union (Kaeding–Miller V) as a finding
that calls for surgery.

A femoral head with a hip-joint effusion stays on rule 5 (a specialist's protocol),
but with the urgency and crutch advice of the femoral neck's high-risk findings
(rule 3): the ``urgent_surgical_referral`` alert — strict non-weight-bearing on
crutches, a same-day orthopaedic assessment — instead of the specialist referral's
warning. The femoral head is high risk by analogy with the neck (domain.md §3.1), and
at the neck an effusion carries about 8× the risk of progression [R16][R18].
"""

from __future__ import annotations

from collections.abc import Iterable

from planner.domain.errors import NoMatchingProtocol
from planner.domain.injury import grade_name, site_profile
from planner.domain.model import (
    Alert,
    FractureSide,
    Injury,
    Protocol,
    Selection,
    Severity,
    Site,
    Triage,
)

#: Fracture-line length (% of neck width) at and above which fixation is usual [R1][R17][R47].
SURGICAL_LINE_PCT = 50

EMERGENCY_ALERT = Alert(
    code="emergency_care",
    severity=Severity.URGENT,
    message=(
        "Go to an emergency department now and do not walk on the leg: a displaced "
        "fracture or one that cannot bear weight needs urgent reduction and fixation."
    ),
    references=("R1", "R2", "R20"),
)

SURGICAL_ALERT = Alert(
    code="urgent_surgical_referral",
    severity=Severity.URGENT,
    message=(
        "Strict non-weight-bearing on crutches and a same-day orthopaedic assessment: "
        "this injury is usually fixed surgically and is at risk of displacement."
    ),
    references=("R1", "R16", "R17", "R19", "R20", "R62"),
)

FEMORAL_HEAD_EFFUSION_ALERT = Alert(
    code=SURGICAL_ALERT.code,
    severity=Severity.URGENT,
    message=(
        "Strict non-weight-bearing on crutches and a same-day orthopaedic assessment: "
        "a femoral-head stress injury with a hip-joint effusion is treated as urgently "
        "as the femoral neck's high-risk findings, where an effusion carries about 8 "
        "times the risk of progression."
    ),
    references=("R16", "R20"),
)

SPECIALIST_ALERT = Alert(
    code="specialist_referral",
    severity=Severity.WARNING,
    message=(
        "See a sports-medicine or orthopaedic specialist promptly: this bone needs a "
        "specialist's plan for protection, and no running is planned until a clinician "
        "clears it. Stop running and jumping now."
    ),
    references=("R13", "R22", "R23", "R27", "R63"),
)


def triage(injury: Injury) -> tuple[Selection, tuple[Alert, ...]]:
    """Apply the A2 rules in order and return the selection with its triage alerts.

    >>> from planner.domain.injury import classify
    >>> triage(classify(site="femoral_neck", type="tension"))[0].triage
    <Triage.URGENT_SURGICAL_REFERRAL: 'urgent_surgical_referral'>
    """
    emergency = []
    if injury.displaced:
        emergency.append("the fracture is displaced")
    if not injury.can_bear_weight:
        emergency.append("the runner cannot bear weight on the leg")
    if emergency:
        return _selection(Triage.EMERGENCY_CARE, 1, emergency), (EMERGENCY_ALERT,)
    if injury.site is not Site.FEMORAL_NECK:
        return _other_site(injury)

    if injury.type is FractureSide.TENSION:
        reasons = ["tension-side (superolateral) injury: unstable, fixation is the norm"]
        return _selection(Triage.URGENT_SURGICAL_REFERRAL, 2, reasons), (SURGICAL_ALERT,)

    high_risk = []
    if injury.complete:
        high_risk.append("complete fracture across the femoral neck")
    if injury.fracture_line_pct is not None and injury.fracture_line_pct >= SURGICAL_LINE_PCT:
        high_risk.append(
            f"fracture line {injury.fracture_line_pct}% of neck width (≥ {SURGICAL_LINE_PCT}%)"
        )
    if injury.hip_effusion:
        high_risk.append("hip-joint effusion on MRI (about 8× risk of progression)")
    if injury.progression_on_imaging:
        high_risk.append("progression on repeat imaging")
    if injury.non_union:
        high_risk.append("non-union (Kaeding–Miller grade V)")
    if high_risk:
        return _selection(Triage.URGENT_SURGICAL_REFERRAL, 3, high_risk), (SURGICAL_ALERT,)

    finding = (
        f"fracture line {injury.fracture_line_pct}% of neck width"
        if injury.fracture_line_pct
        else "fracture line without a measured length"
        if injury.fracture_line
        else "bone marrow oedema without a fracture line"
    )
    reasons = [f"compression-side injury, {finding}, no high-risk finding: managed conservatively"]
    return _selection(Triage.CONSERVATIVE, 4, reasons), ()


def _finding(injury: Injury) -> str:
    grade = (
        f", {grade_name(injury.grading_system, injury.mri_grade)}"
        if injury.mri_grade is not None
        else ""
    )
    line = "a fracture line" if injury.fracture_line else "no fracture line"
    return f"{line}{grade}"


def _other_site(injury: Injury) -> tuple[Selection, tuple[Alert, ...]]:
    """Rules 5 and 6: every site but the femoral neck (domain.md Part B §3)."""
    profile = site_profile(injury.site)
    referral = []
    if profile.high_risk:
        referral.append(
            f"{profile.label} is a high-risk site (completion, delayed or non-union): "
            "specialist care, no durations are planned for it"
        )
    if injury.progression_on_imaging:
        referral.append(f"{profile.label}: progression on repeat imaging")
    if injury.non_union:
        referral.append(f"{profile.label}: non-union (Kaeding–Miller grade V)")
    urgent = injury.site is Site.FEMORAL_HEAD and injury.hip_effusion
    if urgent:
        referral.append(
            f"{profile.label}: hip-joint effusion on MRI (about 8× risk of progression at "
            "the femoral neck): strict non-weight-bearing and a same-day orthopaedic "
            "assessment, as for the femoral neck's high-risk findings"
        )
    elif injury.hip_effusion:
        referral.append(f"{profile.label}: hip-joint effusion on MRI")
    if referral:
        alert = FEMORAL_HEAD_EFFUSION_ALERT if urgent else SPECIALIST_ALERT
        return _selection(Triage.SPECIALIST_REFERRAL, 5, referral), (alert,)
    reasons = [
        f"{profile.label} is a low-risk site, {_finding(injury)}: relative rest and a "
        "graded return, managed conservatively"
    ]
    return _selection(Triage.CONSERVATIVE, 6, reasons), ()


def _selection(outcome: Triage, rule: int, findings: Iterable[str]) -> Selection:
    prefix = f"{'A2' if rule <= 4 else 'Site'} rule {rule} → {outcome.value}: "
    return Selection(triage=outcome, rule=rule, reasons=tuple(prefix + f for f in findings))


def select_protocol(injury: Injury, selection: Selection, catalog: Iterable[Protocol]) -> Protocol:
    """Return the protocol that covers this site, side and triage outcome.

    When several do, the one with the lowest id wins, so the choice never depends
    on the order files were read in.
    """
    matches = sorted(
        (
            p
            for p in catalog
            if injury.site in p.applies_to.sites
            and (injury.type is None or injury.type in p.applies_to.types)
            and selection.triage in p.applies_to.triage
        ),
        key=lambda p: p.id,
    )
    if not matches:
        raise NoMatchingProtocol(
            f"No protocol covers site {injury.site.value!r}"
            f"{f', type {injury.type.value!r}' if injury.type else ''}"
            f" with triage {selection.triage.value!r}."
        )
    return matches[0]
