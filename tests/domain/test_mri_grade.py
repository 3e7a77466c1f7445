"""MRI grade with an explicit grading system (domain.md Part B §1): consistency of the
classification, and how the grade lengthens protection and walking within the ranges
each protocol declares."""

from __future__ import annotations

from typing import Any

import pytest

from planner.domain import InvalidInjury, classify
from planner.domain.model import GradingSystem, Injury
from planner.domain.scheduling import phase_days
from tests.builders import plan, plan_request, shipped_catalog

CONSERVATIVE_ID = "femoral-neck-compression-conservative"
LOW_RISK_ID = "low-risk-bsi-conservative"
SYSTEMS = ["nattiv", "arendt", "fredericson", "kaeding_miller"]


def neck(**fields: Any) -> Injury:
    return classify(site="femoral_neck", type="compression", **fields)


def lengths(found: Injury) -> dict[str, int]:
    made = plan(plan_request(found))
    return {p.key: p.days for p in made.phases}


# ------------------------------------------------------------------ classification


@pytest.mark.parametrize(
    ("system", "grade", "line", "displaced"),
    [
        ("nattiv", 1, False, False),
        ("nattiv", 3, False, False),
        ("nattiv", 4, True, False),
        ("arendt", 2, False, False),
        ("arendt", 4, True, False),
        ("kaeding_miller", 1, False, False),
        ("kaeding_miller", 2, False, False),
        ("kaeding_miller", 3, True, False),
        ("kaeding_miller", 4, True, True),
        ("kaeding_miller", 5, True, False),
    ],
)
def test_grades_imply_their_findings(system: str, grade: int, line: bool, displaced: bool) -> None:
    found = classify(site="fibula", mri_grade=grade, grading_system=system)
    assert found.grading_system is GradingSystem(system)
    assert (found.fracture_line, found.displaced) == (line, displaced)
    assert found.non_union is (system == "kaeding_miller" and grade == 5)


@pytest.mark.parametrize(("line", "name"), [(False, "4a"), (True, "4b")])
def test_fredericson_grade_4_is_split_by_the_fracture_line(line: bool, name: str) -> None:
    found = classify(
        site="tibia_posteromedial", mri_grade=4, grading_system="fredericson", fracture_line=line
    )
    assert found.fracture_line is line


def test_fredericson_grade_4_needs_the_fracture_line_stated() -> None:
    with pytest.raises(InvalidInjury) as caught:
        classify(site="tibia_posteromedial", mri_grade=4, grading_system="fredericson")
    assert list(caught.value.errors) == ["fracture_line"]
    assert "4a" in caught.value.errors["fracture_line"][0]


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"mri_grade": 5, "grading_system": "nattiv"}, "mri_grade"),
        ({"mri_grade": 5, "grading_system": "fredericson", "fracture_line": True}, "mri_grade"),
        ({"mri_grade": 5}, "mri_grade"),  # without a system: 1–4 as before
        ({"mri_grade": 6, "grading_system": "kaeding_miller"}, "mri_grade"),
        ({"grading_system": "arendt"}, "grading_system"),  # a system needs its grade
        ({"mri_grade": 3, "grading_system": "nattiv", "fracture_line": True}, "mri_grade"),
        ({"mri_grade": 2, "grading_system": "arendt", "displaced": True}, "mri_grade"),
        ({"mri_grade": 3, "grading_system": "fredericson", "fracture_line": True}, "mri_grade"),
        ({"mri_grade": 2, "grading_system": "kaeding_miller", "fracture_line": True}, "mri_grade"),
        (
            {"mri_grade": 3, "grading_system": "kaeding_miller", "fracture_line": False},
            "fracture_line",
        ),
        ({"mri_grade": 3, "grading_system": "kaeding_miller", "displaced": True}, "displaced"),
        ({"mri_grade": 4, "grading_system": "kaeding_miller", "displaced": False}, "displaced"),
        ({"mri_grade": 4, "grading_system": "nattiv", "fracture_line": False}, "fracture_line"),
        ({"grading_system": "fuzzy", "mri_grade": 2}, "grading_system"),
    ],
)
def test_contradictory_grades_are_refused(fields: dict[str, Any], field: str) -> None:
    with pytest.raises(InvalidInjury) as caught:
        classify(site="fibula", **fields)
    assert field in caught.value.errors


def test_legacy_grade_without_a_system_keeps_its_old_meaning() -> None:
    """A grade without a system: 1–4, 4 = fracture line, grade 3 with a line accepted."""
    assert neck(mri_grade=4).fracture_line
    assert neck(mri_grade=3, fracture_line_pct=20).fracture_line
    assert neck(mri_grade=3, fracture_line_pct=20).grading_system is None


# ------------------------------------------------------------------ femoral neck durations


@pytest.mark.parametrize(
    ("fields", "nwb", "walking"),
    [
        # without a grading system: the 1.0.0 defaults, whatever the grade
        ({}, 28, 21),
        ({"mri_grade": 3}, 28, 21),
        ({"mri_grade": 4}, 42, 21),
        ({"fracture_line": True}, 42, 21),
        # low grades keep the defaults (never shorter at this high-risk site)
        ({"mri_grade": 1, "grading_system": "nattiv"}, 28, 21),
        ({"mri_grade": 2, "grading_system": "arendt"}, 28, 21),
        ({"mri_grade": 2, "grading_system": "fredericson"}, 28, 21),
        # grade 3 (oedema on T1) and Fredericson 4a: 6 weeks even without a line
        ({"mri_grade": 3, "grading_system": "nattiv"}, 42, 28),
        ({"mri_grade": 3, "grading_system": "arendt"}, 42, 28),
        ({"mri_grade": 3, "grading_system": "fredericson"}, 42, 28),
        ({"mri_grade": 4, "grading_system": "fredericson", "fracture_line": False}, 42, 28),
        # a line in these systems: 8 weeks, the top of the 3–8 week range
        ({"mri_grade": 4, "grading_system": "nattiv"}, 56, 28),
        ({"mri_grade": 4, "grading_system": "arendt"}, 56, 28),
        ({"mri_grade": 4, "grading_system": "fredericson", "fracture_line": True}, 56, 28),
        # Kaeding–Miller: nothing beyond the line it implies [R24]
        ({"mri_grade": 2, "grading_system": "kaeding_miller"}, 28, 21),
        ({"mri_grade": 3, "grading_system": "kaeding_miller"}, 42, 21),
    ],
)
def test_femoral_neck_durations_by_grade(fields: dict[str, Any], nwb: int, walking: int) -> None:
    found = lengths(neck(**fields))
    assert (found["non_weight_bearing"], found["walking"]) == (nwb, walking)
    assert found["protected_weight_bearing"] == 14 and found["return_to_training"] == 56


# ------------------------------------------------------------------ low-risk durations


@pytest.mark.parametrize(
    ("site", "fields", "rest", "walking"),
    [
        ("tibia_posteromedial", {}, 7, 14),
        ("tibia_posteromedial", {"mri_grade": 1, "grading_system": "fredericson"}, 7, 14),
        ("tibia_posteromedial", {"mri_grade": 2, "grading_system": "fredericson"}, 21, 14),
        ("tibia_posteromedial", {"mri_grade": 3, "grading_system": "fredericson"}, 28, 21),
        (
            "tibia_posteromedial",
            {"mri_grade": 4, "grading_system": "fredericson", "fracture_line": False},
            28,
            21,
        ),
        (
            "tibia_posteromedial",
            {"mri_grade": 4, "grading_system": "fredericson", "fracture_line": True},
            42,
            28,
        ),
        ("fibula", {"mri_grade": 2, "grading_system": "arendt"}, 21, 14),
        ("fibula", {"mri_grade": 3, "grading_system": "arendt"}, 42, 21),
        ("fibula", {"mri_grade": 4, "grading_system": "arendt"}, 56, 35),
        ("metatarsal_shaft", {"mri_grade": 3, "grading_system": "nattiv"}, 28, 21),
        ("metatarsal_shaft", {"mri_grade": 4, "grading_system": "nattiv"}, 42, 28),
        ("calcaneus", {"mri_grade": 2, "grading_system": "kaeding_miller"}, 14, 14),
        ("calcaneus", {"mri_grade": 3, "grading_system": "kaeding_miller"}, 28, 21),
        ("femoral_shaft", {"fracture_line": True}, 28, 21),
    ],
)
def test_low_risk_durations_by_grade(
    site: str, fields: dict[str, Any], rest: int, walking: int
) -> None:
    found = lengths(classify(site=site, **fields))
    assert (found["relative_rest"], found["walking"]) == (rest, walking)


def test_fredericson_first_run_falls_in_its_published_weeks() -> None:
    """Fredericson: impact at 2–3 weeks (grade 1), 4–6 (2), 6–9 (3) [R10][R50]."""
    weeks = {1: (2, 3), 2: (4, 6), 3: (6, 9)}
    for grade, (low, high) in weeks.items():
        made = plan(
            plan_request(
                classify(site="tibia_posteromedial", mri_grade=grade, grading_system="fredericson")
            )
        )
        assert made.expected_return_to_run_date is not None
        first_run = (made.expected_return_to_run_date - made.start_date).days
        assert low * 7 <= first_run <= high * 7 + 3, (grade, first_run)


def test_arendt_return_falls_in_its_published_weeks() -> None:
    """Arendt: return at 12–16 weeks (grade 3) and 16+ weeks (grade 4) [R10]."""
    for grade, low, high in ((3, 12, 16), (4, 16, 20)):
        made = plan(plan_request(classify(site="fibula", mri_grade=grade, grading_system="arendt")))
        back = (made.phase("graded_running").end_date - made.start_date).days
        assert low * 7 <= back <= high * 7, (grade, back)


# ------------------------------------------------------------------ monotonic, in range

#: Grades in increasing severity for each system (Fredericson 4a before 4b).
LADDERS: dict[str, list[dict[str, Any]]] = {
    "nattiv": [{"mri_grade": g} for g in (1, 2, 3, 4)],
    "arendt": [{"mri_grade": g} for g in (1, 2, 3, 4)],
    "fredericson": [
        {"mri_grade": 1},
        {"mri_grade": 2},
        {"mri_grade": 3},
        {"mri_grade": 4, "fracture_line": False},
        {"mri_grade": 4, "fracture_line": True},
    ],
    "kaeding_miller": [{"mri_grade": g} for g in (1, 2, 3)],
}


@pytest.mark.parametrize("system", SYSTEMS)
@pytest.mark.parametrize("site", ["femoral_neck", "tibia_posteromedial", "fibula", "pubic_ramus"])
def test_higher_grade_never_shortens_protection_or_walking(system: str, site: str) -> None:
    """Up each system's ladder, protection and walking only lengthen, starting from the
    site's default; the top grade is longer than the default."""
    extra = {"type": "compression"} if site == "femoral_neck" else {}
    protect = "non_weight_bearing" if site == "femoral_neck" else "relative_rest"
    baseline = lengths(classify(site=site, **extra))
    previous = (baseline[protect], baseline["walking"])
    for fields in LADDERS[system]:
        found = lengths(classify(site=site, grading_system=system, **extra, **fields))
        current = (found[protect], found["walking"])
        assert current[0] >= previous[0] and current[1] >= previous[1], (fields, current, previous)
        previous = current
    assert sum(previous) > baseline[protect] + baseline["walking"]


@pytest.mark.parametrize("protocol_id", [CONSERVATIVE_ID, LOW_RISK_ID])
def test_every_grade_rule_lies_within_its_declared_range(protocol_id: str) -> None:
    protocol = shipped_catalog().get(protocol_id)
    for phase in protocol.phases:
        for rule in phase.duration_rules:
            if phase.range_days:
                assert phase.range_days[0] <= rule.days <= phase.range_days[1]
            assert rule.reason, (phase.key, rule.when)


def test_grade_conditions_test_the_context_facts() -> None:
    protocol = shipped_catalog().get(LOW_RISK_ID)
    rest = protocol.phases[0]
    context = {"site": "fibula", "grading_system": "arendt", "mri_grade": 4, "fracture_line": True}
    assert phase_days(rest, context) == 56
    assert phase_days(rest, {**context, "grading_system": None, "fracture_line": False}) == 21
