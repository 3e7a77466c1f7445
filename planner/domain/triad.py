"""Female Athlete Triad Cumulative Risk Assessment (CRA) and its effect on a plan.

Scoring follows the 2014 Female Athlete Triad Coalition table exactly (domain.md
Part B §6.2 [R28]); the DXA indications are the consensus criteria as summarised by
[R58]. The current injury counts in the stress-reaction/fracture row:

* a bone stress injury at a high-risk or trabecular site (femoral neck, femoral head,
  pelvis — the pubic ramus — and the mechanically high-risk sites of §3.1) scores
  **2** by itself;
* at a low-risk cortical site it scores **1**, or **2** once ``prior_bsi_count`` makes
  two or more injuries, or ``prior_high_risk_bsi`` says an earlier one was at a
  high-risk or trabecular site.

The calcaneus scores as cortical: the CRA's trabecular list (femoral neck, sacrum,
pelvis) [R28] does not name it, although some cohorts do [R11b].

What the result does to the plan (``apply_clearance``):

* 0–1 (low risk, full clearance): nothing;
* 2–5 (moderate, provisional/limited clearance): a medical-clearance ``review`` before
  the first running phase and one more pain-free session per walk/run level;
* ≥ 6 (high risk), or a categorical restriction (an eating disorder with BMI < 16):
  restricted. A ``medical_clearance`` *hold* phase is put before the first running
  phase: no running is scheduled until a clinician records that phase's gate as met;
  the running phases are then laid out from the gate's date, with the provisional
  extra session per level.

This module is pure: no I/O, no clock.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace

from planner.domain.errors import InvalidRequest
from planner.domain.injury import site_profile
from planner.domain.model import (
    CLEARANCE_KEY,
    Alert,
    Clearance,
    EnergyAvailability,
    Injury,
    Level,
    PhaseTemplate,
    Protocol,
    RiskAssessment,
    SessionKind,
    SessionTemplate,
    Severity,
    TriadAssessment,
    TriadFactor,
    TriadRisk,
)

#: Score bands of the CRA [R28].
MODERATE_FROM = 2
HIGH_FROM = 6
#: Categorical restriction: anorexia nervosa with a BMI below this [R28].
CATEGORICAL_BMI = 16.0

#: The answers of a risk assessment, in the order they are listed as not assessed.
FIELDS = (
    "energy_availability",
    "bmi",
    "weight_loss_pct_month",
    "menarche_age",
    "menses_last_12_months",
    "bmd_z_score",
    "prior_bsi_count",
    "prior_high_risk_bsi",
)

REFERENCES = ("R28", "R58")


def check(assessment: RiskAssessment) -> None:
    """Refuse answers that contradict each other (field paths ``risk_assessment.…``)."""
    if assessment.prior_high_risk_bsi and assessment.prior_bsi_count == 0:
        raise InvalidRequest(
            "The risk assessment contradicts itself.",
            {
                "risk_assessment.prior_high_risk_bsi": [
                    "Is true, but prior_bsi_count is 0: a prior high-risk injury is a prior injury."
                ]
            },
        )


# ----------------------------------------------------------------------------- rows


def _energy(value: EnergyAvailability | None) -> TriadFactor:
    name = "low_energy_availability"
    if value is None:
        return TriadFactor(name, 0, False, "not assessed")
    points, finding = {
        EnergyAvailability.ADEQUATE: (0, "no dietary restriction"),
        EnergyAvailability.SOME_RESTRICTION: (
            1,
            "some dietary restriction; current or past disordered eating",
        ),
        EnergyAvailability.EATING_DISORDER: (2, "meets DSM-5 criteria for an eating disorder"),
    }[value]
    return TriadFactor(name, points, True, finding)


def _bmi(bmi: float | None, loss: float | None) -> TriadFactor:
    name = "low_bmi"
    if bmi is None and loss is None:
        return TriadFactor(name, 0, False, "not assessed")
    parts: list[tuple[int, str]] = []
    if bmi is not None:
        if bmi <= 17.5:
            parts.append((2, f"BMI {bmi:g} ≤ 17.5"))
        elif bmi < 18.5:
            parts.append((1, f"BMI {bmi:g} between 17.5 and 18.5"))
        else:
            parts.append((0, f"BMI {bmi:g} ≥ 18.5"))
    if loss is not None:
        if loss >= 10:
            parts.append((2, f"{loss:g} % weight loss in a month (≥ 10 %)"))
        elif loss >= 5:
            parts.append((1, f"{loss:g} % weight loss in a month (5 to < 10 %)"))
        else:
            parts.append((0, f"{loss:g} % weight loss in a month (< 5 %)"))
    return TriadFactor(name, max(p for p, _ in parts), True, "; ".join(f for _, f in parts))


def _menarche(age: float | None) -> TriadFactor:
    name = "delayed_menarche"
    if age is None:
        return TriadFactor(name, 0, False, "not assessed")
    if age >= 16:
        return TriadFactor(name, 2, True, f"menarche at {age:g} (≥ 16)")
    if age >= 15:
        return TriadFactor(name, 1, True, f"menarche at {age:g} (15 to < 16)")
    return TriadFactor(name, 0, True, f"menarche at {age:g} (< 15)")


def _menses(count: int | None) -> TriadFactor:
    name = "oligomenorrhoea_amenorrhoea"
    if count is None:
        return TriadFactor(name, 0, False, "not assessed")
    if count < 6:
        return TriadFactor(name, 2, True, f"{count} menses in 12 months (< 6)")
    if count <= 9:
        return TriadFactor(name, 1, True, f"{count} menses in 12 months (6–9)")
    return TriadFactor(name, 0, True, f"{count} menses in 12 months (> 9)")


def _bmd(z: float | None) -> TriadFactor:
    name = "low_bmd"
    if z is None:
        return TriadFactor(name, 0, False, "not assessed")
    if z <= -2.0:
        return TriadFactor(name, 2, True, f"BMD Z-score {z:g} (≤ −2.0)")
    if z < -1.0:
        return TriadFactor(name, 1, True, f"BMD Z-score {z:g} (between −1.0 and −2.0)")
    return TriadFactor(name, 0, True, f"BMD Z-score {z:g} (≥ −1.0)")


def _high_risk_injury(injury: Injury) -> bool:
    profile = site_profile(injury.site)
    return profile.high_risk or profile.trabecular


def _stress_injuries(assessment: RiskAssessment, injury: Injury) -> TriadFactor:
    """The current injury always counts, so this row is always assessed."""
    name = "stress_reaction_fracture"
    prior = assessment.prior_bsi_count or 0
    total = prior + 1
    profile = site_profile(injury.site)
    kind = (
        "high-risk/trabecular"
        if profile.trabecular and profile.high_risk
        else "trabecular"
        if profile.trabecular
        else "high-risk"
        if profile.high_risk
        else "low-risk cortical"
    )
    current = f"this injury at a {kind} site ({profile.label})"
    reasons = []
    if _high_risk_injury(injury):
        reasons.append(current)
    if assessment.prior_high_risk_bsi:
        reasons.append("a prior injury at a high-risk or trabecular site")
    if total >= 2:
        reasons.append(f"{total} bone stress injuries including this one")
    if reasons:
        return TriadFactor(name, 2, True, "; ".join(reasons))
    return TriadFactor(name, 1, True, f"1 bone stress injury: {current}")


# ----------------------------------------------------------------------------- DXA


def _dxa(assessment: RiskAssessment, injury: Injury) -> tuple[str, ...]:
    """The DXA criteria met: any one high-risk criterion, or two or more moderate ones
    (§6.2 as summarised by [R58]). An empty tuple: no DXA indication."""
    a = assessment
    high: list[str] = []
    moderate: list[str] = []
    if a.energy_availability is EnergyAvailability.EATING_DISORDER:
        high.append("DSM-5 eating disorder")
    elif a.energy_availability is EnergyAvailability.SOME_RESTRICTION:
        moderate.append("current or past disordered eating")
    if a.bmi is not None:
        if a.bmi <= 17.5:
            high.append("BMI ≤ 17.5")
        elif a.bmi < 18.5:
            moderate.append("BMI 17.5–18.5")
    if a.menarche_age is not None:
        if a.menarche_age >= 16:
            high.append("menarche at 16 or later")
        elif a.menarche_age >= 15:
            moderate.append("menarche at 15–16")
    if a.menses_last_12_months is not None:
        if a.menses_last_12_months < 6:
            high.append("fewer than 6 menses in 12 months")
        elif a.menses_last_12_months <= 8:
            moderate.append("6–8 menses in 12 months")
    total = (a.prior_bsi_count or 0) + 1
    if total >= 2:
        high.append("2 or more stress injuries (this one included)")
    if _high_risk_injury(injury) or a.prior_high_risk_bsi:
        high.append("a stress injury at a high-risk or trabecular site")
    elif total == 1:
        moderate.append("1 stress injury")
    if a.bmd_z_score is not None:
        if a.bmd_z_score < -2.0:
            high.append("BMD Z-score below −2.0")
        elif a.bmd_z_score < -1.0:
            moderate.append("BMD Z-score −1.0 to −2.0")
    if high:
        return tuple(f"high-risk criterion: {c}" for c in high) + tuple(
            f"moderate-risk criterion: {c}" for c in moderate
        )
    if len(moderate) >= 2:
        return tuple(f"moderate-risk criterion: {c}" for c in moderate)
    return ()


# ----------------------------------------------------------------------------- score


def assess(assessment: RiskAssessment, injury: Injury) -> TriadAssessment:
    """Score the CRA for this runner and this injury.

    >>> from planner.domain.injury import classify
    >>> neck = classify(site="femoral_neck", type="compression")
    >>> assess(RiskAssessment(), neck).score
    2
    """
    check(assessment)
    factors = (
        _energy(assessment.energy_availability),
        _bmi(assessment.bmi, assessment.weight_loss_pct_month),
        _menarche(assessment.menarche_age),
        _menses(assessment.menses_last_12_months),
        _bmd(assessment.bmd_z_score),
        _stress_injuries(assessment, injury),
    )
    score = sum(f.points for f in factors)
    risk = (
        TriadRisk.HIGH
        if score >= HIGH_FROM
        else TriadRisk.MODERATE
        if score >= MODERATE_FROM
        else TriadRisk.LOW
    )
    categorical = None
    if (
        assessment.energy_availability is EnergyAvailability.EATING_DISORDER
        and assessment.bmi is not None
        and assessment.bmi < CATEGORICAL_BMI
    ):
        categorical = (
            f"eating disorder with BMI {assessment.bmi:g} < {CATEGORICAL_BMI:g}: categorically "
            "restricted until treatment restores BMI above 18.5"
        )
    clearance = (
        Clearance.RESTRICTED
        if categorical or risk is TriadRisk.HIGH
        else Clearance.PROVISIONAL
        if risk is TriadRisk.MODERATE
        else Clearance.FULL
    )
    referrals: list[str] = []
    if clearance is not Clearance.FULL:
        referrals += ["sports_physician", "sports_dietitian"]
    if assessment.energy_availability in (
        EnergyAvailability.SOME_RESTRICTION,
        EnergyAvailability.EATING_DISORDER,
    ):
        referrals.append("mental_health")
    dxa = _dxa(assessment, injury)
    return TriadAssessment(
        inputs=assessment,
        factors=factors,
        score=score,
        risk_level=risk,
        clearance=clearance,
        categorical_restriction=categorical,
        not_assessed=tuple(name for name in FIELDS if getattr(assessment, name) is None),
        dxa_indicated=bool(dxa),
        dxa_reasons=dxa,
        referrals=tuple(referrals),
    )


_REFERRAL_WORDS = {
    "sports_physician": "a sports physician",
    "sports_dietitian": "a sports dietitian",
    "mental_health": "mental-health care",
}


def triad_alerts(result: TriadAssessment | None) -> tuple[Alert, ...]:
    """``triad_restricted`` (urgent) or ``triad_clearance`` (warning); nothing at low risk."""
    if result is None or result.clearance is Clearance.FULL:
        return ()
    who = ", ".join(_REFERRAL_WORDS[r] for r in result.referrals)
    dxa = " A DXA scan is indicated." if result.dxa_indicated else ""
    unknown = (
        f" Not assessed (scored 0): {', '.join(n.replace('_', ' ') for n in result.not_assessed)}."
        if result.not_assessed
        else ""
    )
    score = f"Female Athlete Triad risk score {result.score} ({result.risk_level.value} risk)"
    if result.clearance is Clearance.RESTRICTED:
        why = result.categorical_restriction or f"{score}: restricted from training"
        return (
            Alert(
                code="triad_restricted",
                severity=Severity.URGENT,
                message=(
                    f"{why[0].upper()}{why[1:]}. No running is scheduled until a clinician "
                    f"gives medical clearance. See {who}.{dxa}{unknown}"
                ),
                references=REFERENCES,
            ),
        )
    return (
        Alert(
            code="triad_clearance",
            severity=Severity.WARNING,
            message=(
                f"{score}: provisional or limited clearance. Running starts after a "
                f"medical-clearance review, and each walk/run level needs one more pain-free "
                f"session. See {who}.{dxa}{unknown}"
            ),
            references=REFERENCES,
        ),
    )


# ----------------------------------------------------------------------------- plan effects


def context_facts(result: TriadAssessment | None) -> dict[str, object]:
    """The planning-context facts the effects are computed from."""
    if result is None:
        return {"triad_clearance": None, "triad_score": None}
    return {"triad_clearance": result.clearance.value, "triad_score": result.score}


def _holds(
    condition: tuple[tuple[str, tuple[object, ...]], ...], context: Mapping[str, object]
) -> bool:
    return all(context.get(name) in allowed for name, allowed in condition)


def _runs(template: SessionTemplate) -> bool:
    return template.kind.is_running or any(
        lv.kind is not None and lv.kind.is_running for lv in template.levels
    )


def _first_running(protocol: Protocol, context: Mapping[str, object]) -> int | None:
    return next(
        (
            i
            for i, phase in enumerate(protocol.phases)
            if any(_runs(t) and _holds(t.when, context) for t in phase.sessions)
        ),
        None,
    )


def _one_more(template: SessionTemplate) -> SessionTemplate:
    """A walk/run programme that needs one more pain-free session per level."""
    if (
        _runs(template)
        and template.advance == "sessions"
        and template.sessions_per_level
        and len(template.levels) > 1
    ):
        return replace(template, sessions_per_level=template.sessions_per_level + 1)
    return template


def _adjusted(protocol: Protocol) -> bool:
    return any(
        phase.key == CLEARANCE_KEY or any(t.key == CLEARANCE_KEY for t in phase.sessions)
        for phase in protocol.phases
    )


def clearance_review(score: object, *, at: str = "end") -> SessionTemplate:
    return SessionTemplate(
        key=CLEARANCE_KEY,
        kind=SessionKind.REVIEW,
        levels=(
            Level(
                title="Medical clearance before running",
                notes=(
                    f"The Female Athlete Triad risk score is {score} (moderate risk): "
                    "provisional or limited clearance. Running starts only after a sports "
                    "physician has reviewed energy availability and bone health and set "
                    "any training changes."
                ),
            ),
        ),
        at=at,
        criteria=(
            "Sports physician and dietitian review of energy availability and bone health",
            "DXA scan where the Female Athlete Triad criteria indicate one",
            "Provisional or limited clearance to start running, with the training changes it sets",
        ),
    )


def hold_phase(score: object) -> PhaseTemplate:
    return PhaseTemplate(
        key=CLEARANCE_KEY,
        title="Medical clearance: running on hold",
        goals=("Medical clearance before any running",),
        advance_criteria=(
            "A sports physician lifts the Female Athlete Triad restriction",
            "Treatment plan in place with the sports physician, dietitian and, where "
            "needed, mental-health care",
        ),
        guidance=(
            f"The Female Athlete Triad risk assessment restricts training (score {score}; "
            "6 or more, or an eating disorder with a BMI below 16, means restricted from "
            "training and competition).",
            "No running is scheduled. When a clinician records this gate as met, the "
            "running phases are dated from that day.",
            "Walking and strength work from the earlier phases may continue if they are pain-free.",
        ),
        sessions=(
            SessionTemplate(
                key=CLEARANCE_KEY,
                kind=SessionKind.REVIEW,
                levels=(
                    Level(
                        title="Medical clearance: can running start?",
                        notes=(
                            "Running is on hold because of the Female Athlete Triad risk "
                            "assessment. A sports physician decides when it can start."
                        ),
                    ),
                ),
                at="end",
                criteria=(
                    "Female Athlete Triad risk re-assessed by a sports physician",
                    "Energy availability, weight and periods improving on treatment",
                    "DXA scan where the Triad criteria indicate one",
                    "Medical clearance to start running",
                ),
            ),
        ),
        days=1,
        hold=True,
    )


def apply_clearance(protocol: Protocol, context: Mapping[str, object]) -> Protocol:
    """The protocol as this runner's Triad clearance changes it (see the module doc).

    Idempotent: a protocol that already carries the ``medical_clearance`` key (reserved
    by the protocol loader) is returned as it is.
    """
    clearance = context.get("triad_clearance")
    if clearance not in (Clearance.PROVISIONAL.value, Clearance.RESTRICTED.value):
        return protocol
    first = _first_running(protocol, context)
    if first is None or _adjusted(protocol):
        return protocol
    score = context.get("triad_score")
    phases = [replace(p, sessions=tuple(_one_more(t) for t in p.sessions)) for p in protocol.phases]
    if clearance == Clearance.RESTRICTED.value:
        phases.insert(first, hold_phase(score))
    elif first == 0:
        phases[0] = replace(
            phases[0], sessions=(*phases[0].sessions, clearance_review(score, at="start"))
        )
    else:
        before = phases[first - 1]
        phases[first - 1] = replace(before, sessions=(*before.sessions, clearance_review(score)))
    return replace(protocol, phases=tuple(phases))
