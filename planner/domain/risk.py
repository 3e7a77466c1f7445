"""Risk factors → alerts and a medical-clearance gate (domain.md A4).

Contradictions. A request may carry both the A4 ``risk_factors`` (what is present)
and a Triad ``risk_assessment`` (the CRA answers, domain.md Part B §6.2 [R28]). Where
an answer says the opposite of a listed factor, the request is refused naming both
fields (:func:`contradictions`), never guessed; a plan built on either reading could
be wrong about the bone-health referral or the clearance. The pairs:

* ``prior_bone_stress_injury`` with ``prior_bsi_count`` 0;
* ``low_energy_availability`` with ``energy_availability`` ``adequate`` (the CRA's
  "no dietary restriction");
* ``low_bone_density`` with a ``bmd_z_score`` above −1.0 (the Triad's low-BMD range is
  −1.0 and below; the CRA scores above it 0 [R28]).

A factor left out contradicts nothing (the list names what is present, not what is
absent), and ``menstrual_irregularity`` is not compared with ``menses_last_12_months``:
cycles can be irregular with any count of periods.
"""

from __future__ import annotations

from collections.abc import Iterable

from planner.domain.model import Alert, EnergyAvailability, RiskAssessment, RiskFactor, Severity

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


#: The Triad's low-BMD range starts at this Z-score (−1.0 and below) [R28].
LOW_BMD_Z = -1.0


def contradictions(
    risk_factors: Iterable[RiskFactor], assessment: RiskAssessment | None
) -> dict[str, list[str]]:
    """The risk factors that the risk assessment's answers contradict, as errors naming
    both fields (``risk_factors`` and ``risk_assessment.…``); empty when they agree.

    >>> sorted(contradictions([RiskFactor.PRIOR_BONE_STRESS_INJURY],
    ...                       RiskAssessment(prior_bsi_count=0)))
    ['risk_assessment.prior_bsi_count', 'risk_factors']
    """
    if assessment is None:
        return {}
    present = set(risk_factors)
    errors: dict[str, list[str]] = {}

    def refuse(factor: RiskFactor, answer: str, shown: object, why: str) -> None:
        errors.setdefault("risk_factors", []).append(
            f"Lists {factor.value}, but risk_assessment.{answer} is {shown}{why}."
        )
        errors.setdefault(f"risk_assessment.{answer}", []).append(
            f"Is {shown}, but risk_factors lists {factor.value}{why}."
        )

    a = assessment
    if RiskFactor.PRIOR_BONE_STRESS_INJURY in present and a.prior_bsi_count == 0:
        refuse(RiskFactor.PRIOR_BONE_STRESS_INJURY, "prior_bsi_count", 0, ": no earlier injury")
    if (
        RiskFactor.LOW_ENERGY_AVAILABILITY in present
        and a.energy_availability is EnergyAvailability.ADEQUATE
    ):
        refuse(
            RiskFactor.LOW_ENERGY_AVAILABILITY,
            "energy_availability",
            repr(EnergyAvailability.ADEQUATE.value),
            ": no dietary restriction",
        )
    if (
        RiskFactor.LOW_BONE_DENSITY in present
        and a.bmd_z_score is not None
        and a.bmd_z_score > LOW_BMD_Z
    ):
        refuse(
            RiskFactor.LOW_BONE_DENSITY,
            "bmd_z_score",
            f"{a.bmd_z_score:g}",
            f": above the Triad's low-BMD range ({LOW_BMD_Z:g} and below)",
        )
    return errors
