"""Normalise a classification and refuse contradictions (domain.md A1)."""

from __future__ import annotations

from enum import StrEnum
from typing import TypeVar

from planner.domain.errors import InvalidInjury
from planner.domain.model import FractureSide, Injury, Laterality, Site

_E = TypeVar("_E", bound=StrEnum)


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
) -> Injury:
    """Return the normalised injury, filling findings the others imply.

    ``None`` means "not stated". Implications: MRI grade 4, a fracture-line
    percentage above 0, a complete or a displaced fracture each imply a fracture
    line; a line across 100 % of the neck is complete. A stated value that
    contradicts an implication raises :class:`InvalidInjury` naming both fields.

    >>> classify(site="femoral_neck", type="compression", mri_grade=4).fracture_line
    True
    """
    errors: dict[str, list[str]] = {}

    def refuse(name: str, message: str) -> None:
        errors.setdefault(name, []).append(message)

    bone = _member(Site, "site", site, errors)
    side = _member(FractureSide, "type", type, errors)
    side_of_body = _member(Laterality, "laterality", laterality, errors)
    if bone is None and "site" not in errors:
        refuse("site", "Required.")
    if bone is Site.FEMORAL_NECK and side is None and "type" not in errors:
        refuse("type", "Required for a femoral-neck injury: 'compression' or 'tension'.")
    if mri_grade is not None and not 1 <= mri_grade <= 4:
        refuse("mri_grade", "Must be between 1 and 4.")
    if fracture_line_pct is not None and not 0 <= fracture_line_pct <= 100:
        refuse("fracture_line_pct", "Must be between 0 and 100.")

    implied_line: list[str] = []
    if mri_grade == 4:
        implied_line.append("mri_grade 4 means a fracture line is visible")
    if fracture_line_pct:
        implied_line.append(f"fracture_line_pct {fracture_line_pct} measures a fracture line")
    if complete:
        implied_line.append("a complete fracture has a fracture line")
    if displaced:
        implied_line.append("a displaced fracture has a fracture line")
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
        displaced=bool(displaced),
        hip_effusion=bool(hip_effusion),
        progression_on_imaging=bool(progression_on_imaging),
        can_bear_weight=True if can_bear_weight is None else can_bear_weight,
    )
