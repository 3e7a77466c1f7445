"""Risk factors → alerts and a medical-clearance gate (domain.md A4)."""

from __future__ import annotations

from collections.abc import Iterable

from planner.domain.model import Alert, RiskFactor, Severity

#: Factors that call for a bone-health work-up before running resumes [R28][R58].
BONE_HEALTH_FACTORS = frozenset(
    {
        RiskFactor.PRIOR_BONE_STRESS_INJURY,
        RiskFactor.LOW_ENERGY_AVAILABILITY,
        RiskFactor.MENSTRUAL_IRREGULARITY,
        RiskFactor.LOW_BONE_DENSITY,
    }
)

AVOID_NSAIDS = Alert(
    code="avoid_nsaids",
    severity=Severity.INFO,
    message=(
        "Avoid anti-inflammatory painkillers (NSAIDs such as ibuprofen or naproxen) "
        "unless a clinician advises them: they may slow bone healing and are linked to "
        "more stress fractures. Ask your clinician about pain relief."
    ),
    references=("R20", "R34", "R35"),
)

CLEARANCE_CRITERIA = (
    "Sports physician and dietitian review of energy availability and bone health",
    "DXA scan where the Female Athlete Triad criteria indicate one",
    "Medical clearance to start running (Triad / RED-S risk)",
)


def bone_health_flags(risk_factors: Iterable[RiskFactor]) -> tuple[RiskFactor, ...]:
    """The given factors that trigger the bone-health referral, in vocabulary order."""
    present = set(risk_factors)
    return tuple(f for f in RiskFactor if f in present and f in BONE_HEALTH_FACTORS)


def risk_alerts(risk_factors: Iterable[RiskFactor]) -> tuple[Alert, ...]:
    """The alerts the risk factors raise, ``avoid_nsaids`` always last."""
    flags = bone_health_flags(risk_factors)
    alerts: list[Alert] = []
    if flags:
        names = ", ".join(f.value.replace("_", " ") for f in flags)
        alerts.append(
            Alert(
                code="bone_health_referral",
                severity=Severity.WARNING,
                message=(
                    f"Risk factors for bone stress injury ({names}): see a sports physician "
                    "and a dietitian, with a DXA scan where the Triad criteria apply, and get "
                    "medical clearance before running resumes."
                ),
                references=("R28", "R32", "R58"),
            )
        )
    alerts.append(AVOID_NSAIDS)
    return tuple(alerts)


def needs_clearance_review(risk_factors: Iterable[RiskFactor]) -> bool:
    return bool(bone_health_flags(risk_factors))
