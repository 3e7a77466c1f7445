"""Other sites, MRI grading systems and the Triad risk assessment over HTTP, every
response checked against openapi.yaml."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from flask.testing import FlaskClient

from planner.domain import Site
from planner.store import Store
from tests.api.conftest import EXAMPLE_PLAN
from tests.api.contract import Contract
from tests.clock import Clock


def body(injury: dict[str, Any], **changes: Any) -> dict[str, Any]:
    request = copy.deepcopy(EXAMPLE_PLAN)
    request.update({"injury": injury, "risk_factors": [], "timezone": "UTC", **changes})
    return request


def post(client: FlaskClient, auth: dict[str, str], contract: Contract, request: dict[str, Any]):  # type: ignore[no-untyped-def]
    response = client.post("/v1/plans", json=request, headers=auth)
    contract.check("POST", "/v1/plans", response)
    return response


def gate(
    client: FlaskClient, auth: dict[str, str], contract: Contract, plan_id: str, key: str, on: str
):  # type: ignore[no-untyped-def]
    path = f"/v1/plans/{plan_id}/phases/{key}/gate"
    response = client.post(path, json={"met": True, "date": on}, headers=auth)
    contract.check("POST", path, response)
    assert response.status_code == 201, response.get_json()
    return response.get_json()["plan"]


def phase(plan: dict[str, Any], key: str) -> dict[str, Any]:
    return next(p for p in plan["phases"] if p["key"] == key)


def runs(plan: dict[str, Any]) -> list[dict[str, Any]]:
    return [s for s in plan["sessions"] if s["kind"] in ("run_walk", "run")]


def plan_count(store: Store) -> int:
    return store.list_plans("clinic-a", limit=1, offset=0)[1]


# ----------------------------------------------------------------------------- sites


def test_low_risk_site_with_a_grade_and_a_risk_assessment(
    client: FlaskClient, auth: dict[str, str], contract: Contract
) -> None:
    request = body(
        {
            "site": "tibia_posteromedial",
            "laterality": "right",
            "mri_grade": 2,
            "grading_system": "fredericson",
        },
        risk_assessment={"energy_availability": "some_restriction", "menses_last_12_months": 8},
    )

    response = post(client, auth, contract, request)

    assert response.status_code == 201, response.get_json()
    plan = response.get_json()
    assert plan["pathway"] == "conservative"
    assert plan["protocol"]["id"] == "low-risk-bsi-conservative"
    assert plan["injury"]["grading_system"] == "fredericson"
    assert plan["injury"]["type"] is None
    assert plan["selection"]["rule"] == 6
    assert phase(plan, "relative_rest")["days"] == 21  # Fredericson 2
    triad = plan["risk_assessment"]
    assert triad["score"] == 3  # 1 (restriction) + 1 (6–9 menses) + 1 (this injury)
    assert (triad["risk_level"], triad["clearance"]) == ("moderate", "provisional_limited")
    assert triad["energy_availability"] == "some_restriction" and triad["bmi"] is None
    assert "bmi" in triad["not_assessed"] and "menses_last_12_months" not in triad["not_assessed"]
    assert [f["factor"] for f in triad["factors"]][-1] == "stress_reaction_fracture"
    assert triad["dxa_indicated"] is True
    assert triad["referrals"] == ["sports_physician", "sports_dietitian", "mental_health"]
    assert "triad_clearance" in {a["code"] for a in plan["alerts"]}
    assert any(s["title"] == "Medical clearance before running" for s in plan["sessions"])


def test_plan_without_an_assessment_shows_null(
    client: FlaskClient, auth: dict[str, str], contract: Contract
) -> None:
    response = post(client, auth, contract, body({"site": "fibula"}))
    assert response.status_code == 201
    assert response.get_json()["risk_assessment"] is None


@pytest.mark.parametrize("site", ["navicular", "tibia_anterior", "femoral_head"])
def test_high_risk_site_is_a_specialist_referral_with_no_running(
    client: FlaskClient, auth: dict[str, str], contract: Contract, site: str
) -> None:
    response = post(client, auth, contract, body({"site": site}))

    assert response.status_code == 201
    plan = response.get_json()
    assert plan["pathway"] == "specialist_referral"
    assert plan["selection"]["triage"] == "specialist_referral"
    assert [p["key"] for p in plan["phases"]] == ["specialist_referral"]
    assert plan["alerts"][0]["code"] == "specialist_referral"
    assert plan["expected_return_to_run_date"] is None and not runs(plan)


def test_displaced_metatarsal_is_emergency_care(
    client: FlaskClient, auth: dict[str, str], contract: Contract
) -> None:
    response = post(client, auth, contract, body({"site": "metatarsal_shaft", "displaced": True}))
    plan = response.get_json()
    assert plan["pathway"] == "surgical_referral"
    assert plan["protocol"]["id"] == "bone-stress-emergency-care"
    assert plan["alerts"][0]["code"] == "emergency_care"


@pytest.mark.parametrize(
    ("injury", "risk_assessment", "field"),
    [
        ({"site": "fibula", "type": "compression"}, None, "injury.type"),
        ({"site": "fibula", "fracture_line_pct": 20}, None, "injury.fracture_line_pct"),
        ({"site": "fibula", "mri_grade": 5}, None, "injury.mri_grade"),
        (
            {"site": "fibula", "mri_grade": 3, "grading_system": "nattiv", "fracture_line": True},
            None,
            "injury.mri_grade",
        ),
        (
            {"site": "fibula", "mri_grade": 4, "grading_system": "fredericson"},
            None,
            "injury.fracture_line",
        ),
        ({"site": "fibula", "grading_system": "arendt"}, None, "injury.grading_system"),
        (
            {"site": "fibula", "grading_system": "naisbitt", "mri_grade": 2},
            None,
            "injury.grading_system",
        ),
        ({"site": "spine"}, None, "injury.site"),
        (
            {"site": "fibula"},
            {"prior_bsi_count": 0, "prior_high_risk_bsi": True},
            "risk_assessment.prior_high_risk_bsi",
        ),
        (
            {"site": "fibula"},
            {"energy_availability": "poor"},
            "risk_assessment.energy_availability",
        ),
        ({"site": "fibula"}, {"bmi": 3}, "risk_assessment.bmi"),
        ({"site": "fibula"}, {"hair_colour": "red"}, "risk_assessment.hair_colour"),
    ],
)
def test_invalid_injury_or_assessment_is_422_and_stores_nothing(
    client: FlaskClient,
    auth: dict[str, str],
    contract: Contract,
    store: Store,
    injury: dict[str, Any],
    risk_assessment: dict[str, Any] | None,
    field: str,
) -> None:
    extra = {} if risk_assessment is None else {"risk_assessment": risk_assessment}
    response = post(client, auth, contract, body(injury, **extra))

    assert response.status_code == 422, response.get_json()
    assert field in response.get_json()["errors"], response.get_json()["errors"]
    assert plan_count(store) == 0


# ----------------------------------------------------------------------------- catalog


def test_catalog_shows_which_sites_and_classifications_are_covered(
    client: FlaskClient, auth: dict[str, str], contract: Contract
) -> None:
    response = client.get("/v1/protocols", headers=auth)

    contract.check("GET", "/v1/protocols", response)
    items = {p["id"]: p for p in response.get_json()["items"]}
    covered = {site for p in items.values() for site in p["applies_to"]["sites"]}
    assert covered == {s.value for s in Site}
    low = items["low-risk-bsi-conservative"]
    assert low["pathway"] == "conservative" and low["applies_to"]["triage"] == ["conservative"]
    assert low["applies_to"]["types"] == []
    assert "navicular" not in low["applies_to"]["sites"]
    specialist = items["high-risk-bsi-specialist-referral"]
    assert specialist["pathway"] == "specialist_referral"
    assert specialist["phases"][0] == "specialist_referral"
    assert "navicular" in specialist["applies_to"]["sites"]
    assert items["bone-stress-emergency-care"]["applies_to"]["triage"] == ["emergency_care"]
    assert all(p["references"] for p in items.values())


# ----------------------------------------------------------------------------- gates


def test_restricted_plan_runs_only_after_the_clearance_gate(
    client: FlaskClient, auth: dict[str, str], contract: Contract, clock: Clock
) -> None:
    request = body(
        {"site": "femoral_neck", "type": "compression", "fracture_line": True},
        risk_assessment={"energy_availability": "eating_disorder", "bmi": 15.2},
    )
    plan = post(client, auth, contract, request).get_json()
    assert plan["risk_assessment"]["clearance"] == "restricted"
    assert plan["risk_assessment"]["categorical_restriction"]
    assert plan["phases"][-1]["key"] == "medical_clearance" and not runs(plan)
    assert plan["alerts"][0]["code"] == "triad_restricted"

    for key in ("non_weight_bearing", "walking"):
        end = phase(plan, key)["end_date"]
        clock.on(end)
        plan = gate(client, auth, contract, plan["id"], key, end)
    assert not runs(plan)  # the walking gate does not lift the Triad hold
    assert plan["risk_assessment"]["score"] == 6  # the stored request kept the answers

    cleared = "2027-03-01"
    clock.on(cleared)
    plan = gate(client, auth, contract, plan["id"], "medical_clearance", cleared)
    assert runs(plan) and runs(plan)[0]["date"] > cleared
    assert phase(plan, "graded_running")["start_date"] == "2027-03-02"
    assert plan["expected_return_to_run_date"] == runs(plan)[0]["date"]

    again = client.get(f"/v1/plans/{plan['id']}", headers=auth)
    contract.check("GET", f"/v1/plans/{plan['id']}", again)
    assert again.get_json()["risk_assessment"] == plan["risk_assessment"]


def test_specialist_gate_starts_the_walking_programme(
    client: FlaskClient, auth: dict[str, str], contract: Contract, clock: Clock
) -> None:
    plan = post(client, auth, contract, body({"site": "patella"})).get_json()
    cleared = "2027-01-20"
    clock.on(cleared)
    plan = gate(client, auth, contract, plan["id"], "specialist_referral", cleared)
    assert [p["key"] for p in plan["phases"]] == [
        "specialist_referral",
        "walking",
        "graded_running",
        "return_to_training",
    ]
    assert phase(plan, "walking")["start_date"] == "2027-01-21"
    assert plan["expected_return_to_run_date"] is not None


# ----------------------------------------------------------------------------- contradictions


@pytest.mark.parametrize(
    ("factor", "assessment", "answer"),
    [
        ("prior_bone_stress_injury", {"prior_bsi_count": 0}, "risk_assessment.prior_bsi_count"),
        (
            "low_energy_availability",
            {"energy_availability": "adequate"},
            "risk_assessment.energy_availability",
        ),
        ("low_bone_density", {"bmd_z_score": 0.2}, "risk_assessment.bmd_z_score"),
    ],
)
def test_risk_factors_the_assessment_contradicts_are_422_naming_both(
    client: FlaskClient,
    auth: dict[str, str],
    store: Store,
    factor: str,
    assessment: dict[str, Any],
    answer: str,
) -> None:
    request = body(
        {"site": "femoral_neck", "type": "compression", "fracture_line": True},
        risk_factors=["female", factor],
        risk_assessment=assessment,
    )
    response = client.post("/v1/plans", json=request, headers=auth)

    assert response.status_code == 422, response.get_json()
    assert response.mimetype == "application/problem+json"
    errors = response.get_json()["errors"]
    assert set(errors) == {"risk_factors", answer}, errors
    assert factor in errors["risk_factors"][0]
    assert factor in errors[answer][0]
    assert plan_count(store) == 0


def test_risk_factors_the_assessment_agrees_with_make_a_plan(
    client: FlaskClient, auth: dict[str, str]
) -> None:
    request = body(
        {"site": "fibula"},
        risk_factors=["prior_bone_stress_injury", "low_bone_density"],
        risk_assessment={"prior_bsi_count": 2, "bmd_z_score": -1.4},
    )
    response = client.post("/v1/plans", json=request, headers=auth)

    assert response.status_code == 201, response.get_json()
    assert {a["code"] for a in response.get_json()["alerts"]} >= {"bone_health_referral"}


# ----------------------------------------------------------------------------- femoral head


def test_a_femoral_head_effusion_is_as_urgent_as_the_femoral_necks(
    client: FlaskClient, auth: dict[str, str]
) -> None:
    head = client.post(
        "/v1/plans", json=body({"site": "femoral_head", "hip_effusion": True}), headers=auth
    )
    neck = client.post(
        "/v1/plans",
        json=body({"site": "femoral_neck", "type": "compression", "hip_effusion": True}),
        headers=auth,
    )

    assert head.status_code == neck.status_code == 201, head.get_json()
    plan, neck_plan = head.get_json(), neck.get_json()
    alert, neck_alert = plan["alerts"][0], neck_plan["alerts"][0]
    assert (alert["code"], alert["severity"]) == ("urgent_surgical_referral", "urgent")
    assert (alert["code"], alert["severity"]) == (neck_alert["code"], neck_alert["severity"])
    for advice in ("Strict non-weight-bearing on crutches", "same-day orthopaedic assessment"):
        assert advice in alert["message"] and advice in neck_alert["message"]
    assert "specialist_referral" not in {a["code"] for a in plan["alerts"]}
    assert plan["pathway"] == "specialist_referral"
    assert plan["expected_return_to_run_date"] is None and not runs(plan)
