"""The protocol catalog over HTTP."""

from __future__ import annotations

from flask.testing import FlaskClient

from tests.api.contract import Contract


def test_catalog_lists_every_protocol_with_what_it_covers(
    client: FlaskClient, auth: dict[str, str], contract: Contract
) -> None:
    response = client.get("/v1/protocols", headers=auth)

    contract.check("GET", "/v1/protocols", response)
    items = {p["id"]: p for p in response.get_json()["items"]}
    conservative = items["femoral-neck-compression-conservative"]
    assert conservative["version"] == "1.2.0"
    assert conservative["applies_to"] == {
        "sites": ["femoral_neck"],
        "types": ["compression"],
        "triage": ["conservative"],
    }
    assert conservative["phases"][0] == "non_weight_bearing"
    assert all(ref["citation"] for ref in conservative["references"])
    surgical = items["femoral-neck-surgical-referral"]
    assert surgical["pathway"] == "surgical_referral"
    assert set(surgical["applies_to"]["triage"]) == {"emergency_care", "urgent_surgical_referral"}


def test_protocol_detail_shows_phases_sessions_and_references(
    client: FlaskClient, auth: dict[str, str], contract: Contract
) -> None:
    path = "/v1/protocols/femoral-neck-compression-conservative"

    response = client.get(path, headers=auth)

    contract.check("GET", path, response)
    protocol = response.get_json()
    phases = {p["key"]: p for p in protocol["phases"]}
    assert phases["non_weight_bearing"]["days"] == 42
    oedema_only = next(
        rule
        for rule in phases["non_weight_bearing"]["duration_rules"]
        if rule["when"] == {"fracture_line": [False]}
    )
    assert oedema_only["days"] == 28 and oedema_only["reason"]
    assert phases["graded_running"]["days"] is None
    run_walk = next(t for t in phases["graded_running"]["sessions"] if t["key"] == "run_walk")
    assert run_walk["sessions_per_level"] == 3 and len(run_walk["levels"]) == 5
    assert protocol["pain_rules"]


def test_unknown_protocol_is_404(
    client: FlaskClient, auth: dict[str, str], contract: Contract
) -> None:
    response = client.get("/v1/protocols/nope", headers=auth)

    contract.check("GET", "/v1/protocols/nope", response)
    assert response.status_code == 404
    assert response.mimetype == "application/problem+json"
