"""Normalise a classification and refuse contradictions (domain.md A1, Part B §1 and §3)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import suppress
from dataclasses import dataclass, field
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

_ROMAN = {1: "I", 2: "II", 3: "III", 4: "IV", 5: "V"}


@dataclass(frozen=True, slots=True)
class GradingScale:
    """How one MRI grading system reads its grades (domain.md Part B §1).

    The grade-keyed fields hold only grades from 1 to ``max_grade``, so a grade out of
    range implies nothing and is refused once, for its range.
    """

    #: What a grade is called: ``"Nattiv grade"`` → ``"Nattiv grade 3"``.
    name: str
    max_grade: int
    #: Grades that show a fracture line → that finding, as a refusal cites it.
    line_grades: Mapping[int, str] = field(default_factory=dict)
    #: Grades that rule out a fracture line, stated or measured.
    no_line_grades: frozenset[int] = frozenset()
    #: How to grade a line instead, when a no-line grade comes with one.
    line_instead: str = ""
    #: Grades that a line splits in two → why ``fracture_line`` must be stated.
    line_must_be_stated: Mapping[int, str] = field(default_factory=dict)
    #: Grades that are a displaced fracture.
    displaced_grades: frozenset[int] = frozenset()
    #: Grades a displaced fracture contradicts → why.
    undisplaced_grades: Mapping[int, str] = field(default_factory=dict)
    #: Names the system in the out-of-range refusal: ``" for nattiv"``.
    range_suffix: str = ""
    #: Out-of-range grades that probably meant another system → the hint.
    range_hints: Mapping[int, str] = field(default_factory=dict)
    roman_numerals: bool = False

    def grade_name(self, grade: int) -> str:
        numeral = _ROMAN.get(grade, str(grade)) if self.roman_numerals else str(grade)
        return f"{self.name} {numeral}"

    def out_of_range(self, grade: int) -> str:
        hint = self.range_hints.get(grade, "")
        return f"Must be between 1 and {self.max_grade}{self.range_suffix}{hint}."


_KAEDING_MILLER_DISPLACED = "a displaced fracture is grade IV."

#: Each grading system's reading of its grades; ``None``: a grade without a stated
#: system, which implies a line at 4 but rules nothing out (Fredericson 4 may lack one).
GRADING_SCALES: dict[GradingSystem | None, GradingScale] = {
    None: GradingScale(
        "MRI grade",
        max_grade=4,
        line_grades={4: "mri_grade 4 means a fracture line is visible"},
        range_hints={5: " (1–5 with grading_system 'kaeding_miller')"},
    ),
    GradingSystem.NATTIV: GradingScale(
        "Nattiv grade",
        max_grade=4,
        line_grades={4: "Nattiv grade 4 means a fracture line is visible"},
        no_line_grades=frozenset({1, 2, 3}),
        line_instead="Nattiv grade 4 is grade 3 plus a visible line.",
        range_suffix=" for nattiv",
    ),
    GradingSystem.ARENDT: GradingScale(
        "Arendt grade",
        max_grade=4,
        line_grades={4: "Arendt grade 4 means a fracture line is visible"},
        no_line_grades=frozenset({1, 2, 3}),
        line_instead="Arendt grade 4 is grade 3 plus a visible line.",
        range_suffix=" for arendt",
    ),
    GradingSystem.FREDERICSON: GradingScale(
        "Fredericson grade",
        max_grade=4,
        no_line_grades=frozenset({1, 2, 3}),
        line_instead="a line is Fredericson grade 4b (grade 4 with fracture_line true).",
        line_must_be_stated={
            4: "Fredericson grade 4 needs it stated: true for 4b (a linear "
            "intracortical signal), false for 4a (multiple focal signal changes)."
        },
        range_suffix=" for fredericson",
    ),
    GradingSystem.KAEDING_MILLER: GradingScale(
        "Kaeding–Miller grade",
        max_grade=5,
        line_grades={
            3: "Kaeding–Miller grade III is a non-displaced fracture line",
            4: "Kaeding–Miller grade IV is a displaced fracture",
            5: "Kaeding–Miller grade V is a fracture that has not united",
        },
        no_line_grades=frozenset({1, 2}),
        line_instead="a non-displaced line is Kaeding–Miller grade III.",
        displaced_grades=frozenset({4}),
        undisplaced_grades={
            1: f"has no fracture line; {_KAEDING_MILLER_DISPLACED}",
            2: f"has no fracture line; {_KAEDING_MILLER_DISPLACED}",
            3: f"is non-displaced; {_KAEDING_MILLER_DISPLACED}",
        },
        range_suffix=" for kaeding_miller",
        roman_numerals=True,
    ),
}


def site_profile(site: Site) -> SiteProfile:
    return SITE_PROFILES[site]


def grade_name(system: GradingSystem | None, grade: int) -> str:
    """``"Fredericson grade 3"``, ``"Kaeding–Miller grade III"``, ``"MRI grade 2"``."""
    return GRADING_SCALES[system].grade_name(grade)


def _member(
    vocabulary: type[_E], name: str, value: object, errors: dict[str, list[str]]
) -> _E | None:
    """``value`` as a member of ``vocabulary``; an unknown value is recorded in ``errors``."""
    if value is None:
        return None
    if isinstance(value, str):  # the members are strings: nothing else can name one
        with suppress(ValueError):
            return vocabulary(value)
    allowed = ", ".join(repr(m.value) for m in vocabulary)
    errors.setdefault(name, []).append(f"Unknown value {value!r}; use one of {allowed}.")
    return None


@dataclass(frozen=True, slots=True)
class _Stated:
    """The findings as stated (``None``: not stated), vocabularies already parsed."""

    site: Site | None
    site_stated: bool
    type_stated: bool
    grading_system: GradingSystem | None
    mri_grade: int | None
    fracture_line: bool | None
    fracture_line_pct: int | None
    complete: bool | None
    displaced: bool | None
    hip_effusion: bool | None

    @property
    def scale(self) -> GradingScale:
        return GRADING_SCALES[self.grading_system]

    @property
    def line_findings(self) -> list[str]:
        """Findings that show a line, stated or measured (not the grade itself)."""
        findings: list[str] = []
        if self.fracture_line_pct:
            findings.append(f"fracture_line_pct {self.fracture_line_pct} measures a fracture line")
        if self.complete:
            findings.append("a complete fracture has a fracture line")
        if self.displaced:
            findings.append("a displaced fracture has a fracture line")
        return findings

    @property
    def implied_line(self) -> list[str]:
        """Everything that implies a fracture line: the grade first, then findings."""
        findings = self.line_findings
        if self.mri_grade is not None and self.mri_grade in self.scale.line_grades:
            findings.insert(0, self.scale.line_grades[self.mri_grade])
        return findings


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
    :class:`InvalidInjury` naming the fields. :data:`GRADING_SCALES` says what each
    grading system implies and refuses.

    Only the femoral neck takes ``type``, ``fracture_line_pct`` and ``complete`` (they
    describe the neck); a hip effusion belongs to the femoral neck or head.

    >>> classify(site="femoral_neck", type="compression", mri_grade=4).fracture_line
    True
    >>> classify(site="fibula", mri_grade=4, grading_system="fredericson",
    ...          fracture_line=False).fracture_line
    False
    """
    errors: dict[str, list[str]] = {}
    bone = _member(Site, "site", site, errors)
    side = _member(FractureSide, "type", type, errors)
    side_of_body = _member(Laterality, "laterality", laterality, errors)
    stated = _Stated(
        site=bone,
        site_stated=site is not None,
        type_stated=type is not None,
        grading_system=_member(GradingSystem, "grading_system", grading_system, errors),
        mri_grade=mri_grade,
        fracture_line=fracture_line,
        fracture_line_pct=fracture_line_pct,
        complete=complete,
        displaced=displaced,
        hip_effusion=hip_effusion,
    )
    for name, message in _contradictions(stated):
        errors.setdefault(name, []).append(message)
    if errors or bone is None:
        raise InvalidInjury("The injury classification contradicts itself.", errors)

    return Injury(
        site=bone,
        type=side,
        laterality=side_of_body,
        mri_grade=mri_grade,
        fracture_line=bool(fracture_line or stated.implied_line),
        fracture_line_pct=fracture_line_pct,
        complete=bool(complete or fracture_line_pct == 100),
        displaced=bool(displaced or mri_grade in stated.scale.displaced_grades),
        hip_effusion=bool(hip_effusion),
        progression_on_imaging=bool(progression_on_imaging),
        can_bear_weight=True if can_bear_weight is None else can_bear_weight,
        grading_system=stated.grading_system,
    )


#: A refusal: the field it names and the message.
_Refusal = tuple[str, str]


def _contradictions(stated: _Stated) -> Iterator[_Refusal]:
    """Every refusal, in the order a client reads them: presence, site, ranges, grade,
    line, completeness."""
    yield from _missing(stated)
    yield from _not_of_this_site(stated)
    yield from _out_of_range(stated)
    yield from _against_the_grade(stated)
    yield from _against_the_line(stated)
    yield from _against_completeness(stated)


def _missing(stated: _Stated) -> Iterator[_Refusal]:
    if not stated.site_stated:
        yield "site", "Required."
    if stated.site is Site.FEMORAL_NECK and not stated.type_stated:
        yield "type", "Required for a femoral-neck injury: 'compression' or 'tension'."


def _not_of_this_site(stated: _Stated) -> Iterator[_Refusal]:
    """Findings that describe the femoral neck (or hip) stated for another bone."""
    if stated.site is None or stated.site is Site.FEMORAL_NECK:
        return
    if stated.type_stated:
        yield "type", "Only a femoral-neck injury takes a type (compression or tension side)."
    if stated.fracture_line_pct is not None:
        yield "fracture_line_pct", "Measures a line across the femoral neck only; omit it."
    if stated.complete:
        yield (
            "complete",
            "Describes a line across the femoral neck only; for another bone state "
            "displaced or a Kaeding–Miller grade.",
        )
    if stated.hip_effusion and stated.site not in HIP_SITES:
        yield "hip_effusion", "A hip-joint effusion belongs to the femoral neck or head."


def _out_of_range(stated: _Stated) -> Iterator[_Refusal]:
    grade, pct = stated.mri_grade, stated.fracture_line_pct
    if grade is not None and not 1 <= grade <= stated.scale.max_grade:
        yield "mri_grade", stated.scale.out_of_range(grade)
    if stated.grading_system is not None and grade is None:
        yield "grading_system", "Give the mri_grade this grading system grades."
    if pct is not None and not 0 <= pct <= 100:
        yield "fracture_line_pct", "Must be between 0 and 100."


def _against_the_grade(stated: _Stated) -> Iterator[_Refusal]:
    """Findings the stated grade rules out, by its grading system's table."""
    grade, scale = stated.mri_grade, stated.scale
    if grade is None:
        return
    line_findings = stated.line_findings
    if grade in scale.no_line_grades and (line_findings or stated.fracture_line is True):
        shown = "; ".join(line_findings) or "fracture_line is true"
        yield (
            "mri_grade",
            f"{scale.grade_name(grade)} has no fracture line, but {shown}: {scale.line_instead}",
        )
    if grade in scale.line_must_be_stated and stated.fracture_line is None and not line_findings:
        yield "fracture_line", scale.line_must_be_stated[grade]
    if grade in scale.displaced_grades and stated.displaced is False:
        yield "displaced", f"Is false, but {scale.grade_name(grade)} is a displaced fracture."
    elif grade in scale.undisplaced_grades and stated.displaced:
        yield "displaced", f"{scale.grade_name(grade)} {scale.undisplaced_grades[grade]}"


def _against_the_line(stated: _Stated) -> Iterator[_Refusal]:
    implied = stated.implied_line
    if stated.fracture_line is False and implied:
        yield "fracture_line", f"Is false, but {'; '.join(implied)}."
    if stated.fracture_line is True and stated.fracture_line_pct == 0:
        yield "fracture_line_pct", "Is 0, but fracture_line is true."


def _against_completeness(stated: _Stated) -> Iterator[_Refusal]:
    complete, pct = stated.complete, stated.fracture_line_pct
    if complete is True and pct is not None and pct < 100:
        yield "complete", f"Is true, but fracture_line_pct {pct} is less than the whole neck."
    if complete is False and pct == 100:
        yield "complete", "Is false, but fracture_line_pct 100 crosses the whole neck."
