"""Normalise a classification and refuse contradictions (domain.md A1, Part B §1 and §3)."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import TypeVar

from planner.domain.errors import InvalidInjury
from planner.domain.model import FractureSide, GradingSystem, Injury, Laterality, Site

_E = TypeVar("_E", bound=StrEnum)


@dataclass(frozen=True, slots=True)
class SiteProfile:
    """What the planner knows about a bone (domain.md Part B §3.1).

    ``high_risk`` is the *mechanical* risk (completion, displacement, delayed or
    non-union) that decides triage; ``trabecular`` is whether the Female Athlete Triad
    CRA counts the site as trabecular [R28]. The two differ: the pelvis is low risk
    mechanically but trabecular for the CRA.
    """

    label: str
    high_risk: bool
    trabecular: bool
    note: str = ""


#: Every site in the vocabulary. Mechanical risk: [R13][R22][R23][R63]; trabecular
#: sites for the CRA: femoral neck, sacrum, pelvis [R28].
SITE_PROFILES: dict[Site, SiteProfile] = {
    Site.FEMORAL_NECK: SiteProfile(
        "femoral neck",
        high_risk=True,
        trabecular=True,
        note="Triaged by its own rules (A2): compression side without a high-risk "
        "finding is managed conservatively [R1][R22].",
    ),
    Site.TIBIA_POSTEROMEDIAL: SiteProfile("posteromedial tibial shaft", False, False),
    Site.FIBULA: SiteProfile("fibula", False, False),
    Site.METATARSAL_SHAFT: SiteProfile("shaft of the 2nd–4th metatarsal", False, False),
    Site.CALCANEUS: SiteProfile(
        "calcaneus",
        False,
        False,
        note="Some cohorts call the calcaneus trabecular-rich [R11b]; the CRA's list "
        "(femoral neck, sacrum, pelvis) [R28] does not, so it scores as cortical.",
    ),
    Site.PUBIC_RAMUS: SiteProfile(
        "pubic ramus", False, True, note="Pelvis: trabecular for the CRA [R28]."
    ),
    Site.FEMORAL_SHAFT: SiteProfile("femoral shaft", False, False),
    Site.TIBIA_ANTERIOR: SiteProfile("anterior tibial cortex", True, False),
    Site.NAVICULAR: SiteProfile("tarsal navicular", True, False),
    Site.METATARSAL_5_PROXIMAL: SiteProfile("proximal 5th metatarsal", True, False),
    Site.MEDIAL_MALLEOLUS: SiteProfile("medial malleolus", True, False),
    Site.SESAMOID: SiteProfile("hallux sesamoid", True, False),
    Site.PATELLA: SiteProfile("patella", True, False),
    Site.TALUS: SiteProfile("talus", True, False),
    Site.FEMORAL_HEAD: SiteProfile(
        "femoral head",
        True,
        True,
        note="Not in the retrieved site lists: high risk and trabecular by analogy "
        "with the femoral neck (an assumption, domain.md §3.1).",
    ),
}

#: Sites where a hip-joint effusion can be reported.
HIP_SITES = frozenset({Site.FEMORAL_NECK, Site.FEMORAL_HEAD})

#: Highest grade of each grading system; ``None``: a grade without a stated system.
MAX_GRADE: dict[GradingSystem | None, int] = {
    None: 4,
    GradingSystem.NATTIV: 4,
    GradingSystem.ARENDT: 4,
    GradingSystem.FREDERICSON: 4,
    GradingSystem.KAEDING_MILLER: 5,
}
_ROMAN = {1: "I", 2: "II", 3: "III", 4: "IV", 5: "V"}


def site_profile(site: Site) -> SiteProfile:
    return SITE_PROFILES[site]


def grade_name(system: GradingSystem | None, grade: int) -> str:
    """``"Fredericson grade 3"``, ``"Kaeding–Miller grade III"``, ``"MRI grade 2"``."""
    if system is None:
        return f"MRI grade {grade}"
    if system is GradingSystem.KAEDING_MILLER:
        return f"Kaeding–Miller grade {_ROMAN.get(grade, grade)}"
    return f"{system.value.capitalize()} grade {grade}"


def _member(
    vocabulary: type[_E], name: str, value: object, errors: dict[str, list[str]]
) -> _E | None:
    """``value`` as a member of ``vocabulary``; an unknown value is recorded in ``errors``."""
    if value is None:
        return None
    try:
        return vocabulary(value)
    except ValueError:
        allowed = ", ".join(repr(m.value) for m in vocabulary)
        errors.setdefault(name, []).append(f"Unknown value {value!r}; use one of {allowed}.")
        return None


def classify(
    *,
    site: Site | str,
    type: FractureSide | str | None = None,
    laterality: Laterality | str | None = None,
    mri_grade: int | None = None,
    fracture_line: bool | None = None,
    fracture_line_pct: int | None = None,
    complete: bool | None = None,
    displaced: bool | None = None,
    hip_effusion: bool | None = None,
    progression_on_imaging: bool | None = None,
    can_bear_weight: bool | None = None,
    grading_system: GradingSystem | str | None = None,
) -> Injury:
    """Return the normalised injury, filling findings the others imply.

    ``None`` means "not stated". Implications: a grade that shows a line (Nattiv or
    Arendt 4, an MRI grade 4 without a stated system, Kaeding–Miller III–V), a
    fracture-line percentage above 0, a complete or a displaced fracture each imply a
    fracture line; a line across 100 % of the neck is complete; Kaeding–Miller IV is
    displaced. A stated value that contradicts an implication raises
    :class:`InvalidInjury` naming the fields.

    Only the femoral neck takes ``type``, ``fracture_line_pct`` and ``complete`` (they
    describe the neck); a hip effusion belongs to the femoral neck or head.

    >>> classify(site="femoral_neck", type="compression", mri_grade=4).fracture_line
    True
    >>> classify(site="fibula", mri_grade=4, grading_system="fredericson",
    ...          fracture_line=False).fracture_line
    False
    """
    errors: dict[str, list[str]] = {}

    def refuse(name: str, message: str) -> None:
        errors.setdefault(name, []).append(message)

    bone = _member(Site, "site", site, errors)
    side = _member(FractureSide, "type", type, errors)
    side_of_body = _member(Laterality, "laterality", laterality, errors)
    system = _member(GradingSystem, "grading_system", grading_system, errors)
    if bone is None and "site" not in errors:
        refuse("site", "Required.")
    if bone is Site.FEMORAL_NECK and side is None and "type" not in errors:
        refuse("type", "Required for a femoral-neck injury: 'compression' or 'tension'.")
    if bone is not None and bone is not Site.FEMORAL_NECK:
        if type is not None:
            refuse("type", "Only a femoral-neck injury takes a type (compression or tension side).")
        if fracture_line_pct is not None:
            refuse("fracture_line_pct", "Measures a line across the femoral neck only; omit it.")
        if complete:
            refuse(
                "complete",
                "Describes a line across the femoral neck only; for another bone state "
                "displaced or a Kaeding–Miller grade.",
            )
        if hip_effusion and bone not in HIP_SITES:
            refuse("hip_effusion", "A hip-joint effusion belongs to the femoral neck or head.")

    top = MAX_GRADE.get(system, 4)
    grade_ok = mri_grade is None or 1 <= mri_grade <= top
    if not grade_ok:
        suffix = "" if system is None else f" for {system.value}"
        hint = (
            " (1–5 with grading_system 'kaeding_miller')"
            if system is None and mri_grade == 5
            else ""
        )
        refuse("mri_grade", f"Must be between 1 and {top}{suffix}{hint}.")
    if system is not None and mri_grade is None:
        refuse("grading_system", "Give the mri_grade this grading system grades.")
    if fracture_line_pct is not None and not 0 <= fracture_line_pct <= 100:
        refuse("fracture_line_pct", "Must be between 0 and 100.")

    # Findings that show a line, stated or measured (not the grade itself).
    line_findings: list[str] = []
    if fracture_line_pct:
        line_findings.append(f"fracture_line_pct {fracture_line_pct} measures a fracture line")
    if complete:
        line_findings.append("a complete fracture has a fracture line")
    if displaced:
        line_findings.append("a displaced fracture has a fracture line")

    implied_line = list(line_findings)
    implied_displaced = False
    if grade_ok and mri_grade is not None:
        name = grade_name(system, mri_grade)
        shows_line = (
            system in (None, GradingSystem.NATTIV, GradingSystem.ARENDT) and mri_grade == 4
        ) or (system is GradingSystem.KAEDING_MILLER and mri_grade >= 3)
        if shows_line:
            what = {
                3: "is a non-displaced fracture line",
                4: "means a fracture line is visible",
                5: "is a fracture that has not united",
            }[mri_grade]
            if system is GradingSystem.KAEDING_MILLER and mri_grade == 4:
                what = "is a displaced fracture"
            implied_line.insert(0, f"{name if system else 'mri_grade 4'} {what}")
        if system is not None and not shows_line:
            has_line = bool(line_findings) or fracture_line is True
            line_grade = system is GradingSystem.FREDERICSON and mri_grade == 4
            if has_line and not line_grade:
                shown = "; ".join(line_findings) or "fracture_line is true"
                refuse(
                    "mri_grade",
                    f"{name} has no fracture line, but {shown}: "
                    + (
                        "a line is Fredericson grade 4b (grade 4 with fracture_line true)."
                        if system is GradingSystem.FREDERICSON
                        else "a non-displaced line is Kaeding–Miller grade III."
                        if system is GradingSystem.KAEDING_MILLER
                        else f"{system.value.capitalize()} grade 4 is grade 3 plus a visible line."
                    ),
                )
            if line_grade and fracture_line is None and not line_findings:
                refuse(
                    "fracture_line",
                    "Fredericson grade 4 needs it stated: true for 4b (a linear "
                    "intracortical signal), false for 4a (multiple focal signal changes).",
                )
        if system is GradingSystem.KAEDING_MILLER:
            if mri_grade == 4:
                implied_displaced = True
                if displaced is False:
                    refuse("displaced", f"Is false, but {name} is a displaced fracture.")
            elif mri_grade == 3 and displaced:
                refuse("displaced", f"{name} is non-displaced; a displaced fracture is grade IV.")
            elif mri_grade < 3 and displaced:
                refuse(
                    "displaced", f"{name} has no fracture line; a displaced fracture is grade IV."
                )

    if fracture_line is False and implied_line:
        refuse("fracture_line", f"Is false, but {'; '.join(implied_line)}.")
    if fracture_line is True and fracture_line_pct == 0:
        refuse("fracture_line_pct", "Is 0, but fracture_line is true.")

    if complete is True and fracture_line_pct is not None and fracture_line_pct < 100:
        refuse(
            "complete",
            f"Is true, but fracture_line_pct {fracture_line_pct} is less than the whole neck.",
        )
    if complete is False and fracture_line_pct == 100:
        refuse("complete", "Is false, but fracture_line_pct 100 crosses the whole neck.")

    if errors or bone is None:
        raise InvalidInjury("The injury classification contradicts itself.", errors)

    return Injury(
        site=bone,
        type=side,
        laterality=side_of_body,
        mri_grade=mri_grade,
        fracture_line=bool(fracture_line or implied_line),
        fracture_line_pct=fracture_line_pct,
        complete=bool(complete or fracture_line_pct == 100),
        displaced=bool(displaced or implied_displaced),
        hip_effusion=bool(hip_effusion),
        progression_on_imaging=bool(progression_on_imaging),
        can_bear_weight=True if can_bear_weight is None else can_bear_weight,
        grading_system=system,
    )
