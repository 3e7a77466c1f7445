"""A1: the classification is normalised, and contradictions are refused, never guessed."""

from __future__ import annotations

from typing import Any

import pytest

from planner.domain import FractureSide, InvalidInjury, PlannerError, Site, classify
from tests.builders import injury

# ------------------------------------------------------------------ implications


def test_minimal_compression_injury_has_no_findings() -> None:
    found = injury()
    assert found.site is Site.FEMORAL_NECK
    assert found.type is FractureSide.COMPRESSION
    assert not found.fracture_line
    assert not found.complete
    assert not found.displaced
    assert not found.hip_effusion
    assert not found.progression_on_imaging
    assert found.can_bear_weight is True


def test_mri_grade_4_implies_a_fracture_line() -> None:
    assert injury(mri_grade=4).fracture_line is True


@pytest.mark.parametrize("grade", [1, 2, 3])
def test_lower_mri_grades_do_not_imply_a_fracture_line(grade: int) -> None:
    assert injury(mri_grade=grade).fracture_line is False


@pytest.mark.parametrize("pct", [1, 30, 49, 50, 99])
def test_fracture_line_percentage_above_zero_implies_a_fracture_line(pct: int) -> None:
    found = injury(fracture_line_pct=pct)
    assert found.fracture_line is True
    assert found.fracture_line_pct == pct
    assert found.complete is False


def test_zero_percent_line_without_stated_line_means_no_line() -> None:
    assert injury(fracture_line_pct=0).fracture_line is False


def test_complete_fracture_implies_a_fracture_line() -> None:
    found = injury(complete=True)
    assert found.fracture_line is True
    assert found.complete is True


def test_displaced_fracture_implies_a_fracture_line() -> None:
    found = injury(displaced=True)
    assert found.fracture_line is True
    assert found.displaced is True


def test_line_across_the_whole_neck_is_complete() -> None:
    found = injury(fracture_line_pct=100)
    assert found.complete is True
    assert found.fracture_line is True


def test_consistent_stated_findings_are_kept() -> None:
    found = injury(
        type="tension",
        laterality="right",
        mri_grade=4,
        fracture_line=True,
        fracture_line_pct=100,
        complete=True,
        displaced=False,
        hip_effusion=True,
        progression_on_imaging=True,
        can_bear_weight=False,
    )
    assert found.type is FractureSide.TENSION
    assert found.laterality == "right"
    assert (found.mri_grade, found.fracture_line, found.fracture_line_pct) == (4, True, 100)
    assert found.complete and found.hip_effusion and found.progression_on_imaging
    assert not found.displaced
    assert found.can_bear_weight is False


def test_enum_members_are_accepted_as_well_as_strings() -> None:
    as_members = classify(site=Site.FEMORAL_NECK, type=FractureSide.TENSION)
    assert as_members == classify(site="femoral_neck", type="tension")


# ------------------------------------------------------------------ contradictions


def _refusal(**fields: Any) -> InvalidInjury:
    with pytest.raises(InvalidInjury) as caught:
        injury(**fields)
    return caught.value


@pytest.mark.parametrize(
    ("fields", "offending", "mentions"),
    [
        pytest.param(
            {"fracture_line": False, "fracture_line_pct": 30},
            "fracture_line",
            "fracture_line_pct 30",
            id="no-line-but-pct-30",
        ),
        pytest.param(
            {"fracture_line": False, "mri_grade": 4},
            "fracture_line",
            "mri_grade 4",
            id="no-line-but-grade-4",
        ),
        pytest.param(
            {"fracture_line": False, "complete": True},
            "fracture_line",
            "complete",
            id="no-line-but-complete",
        ),
        pytest.param(
            {"fracture_line": False, "displaced": True},
            "fracture_line",
            "displaced",
            id="no-line-but-displaced",
        ),
        pytest.param(
            {"fracture_line": True, "fracture_line_pct": 0},
            "fracture_line_pct",
            "fracture_line",
            id="line-but-pct-0",
        ),
        pytest.param(
            {"complete": True, "fracture_line_pct": 40},
            "complete",
            "fracture_line_pct 40",
            id="complete-but-pct-40",
        ),
        pytest.param(
            {"complete": False, "fracture_line_pct": 100},
            "complete",
            "fracture_line_pct 100",
            id="incomplete-but-pct-100",
        ),
    ],
)
def test_contradictory_findings_are_refused_naming_the_field(
    fields: dict[str, Any], offending: str, mentions: str
) -> None:
    refusal = _refusal(**fields)
    assert list(refusal.errors) == [offending]
    assert mentions in " ".join(refusal.errors[offending])


def test_femoral_neck_injury_without_type_is_refused() -> None:
    with pytest.raises(InvalidInjury) as caught:
        classify(site="femoral_neck", mri_grade=2)
    assert list(caught.value.errors) == ["type"]


@pytest.mark.parametrize("grade", [0, 5, -1, 10])
def test_out_of_range_mri_grade_is_refused(grade: int) -> None:
    assert "mri_grade" in _refusal(mri_grade=grade).errors


@pytest.mark.parametrize("pct", [-1, 101, 150])
def test_out_of_range_fracture_line_pct_is_refused(pct: int) -> None:
    assert "fracture_line_pct" in _refusal(fracture_line_pct=pct).errors


@pytest.mark.parametrize(
    ("field", "value"),
    [("site", "tibia"), ("type", "oblique"), ("laterality", "middle")],
)
def test_unknown_vocabulary_is_refused_naming_the_field(field: str, value: str) -> None:
    assert field in _refusal(**{field: value}).errors


def test_every_problem_is_reported_at_once() -> None:
    refusal = _refusal(mri_grade=7, fracture_line_pct=130, complete=False)
    assert {"mri_grade", "fracture_line_pct"} <= set(refusal.errors)


def test_refusal_is_a_planner_error_with_a_stable_code() -> None:
    refusal = _refusal(fracture_line=False, fracture_line_pct=30)
    assert isinstance(refusal, PlannerError)
    assert refusal.code == "invalid_injury"
    assert refusal.detail
