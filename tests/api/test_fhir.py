"""FHIR R4 routes: CarePlan, PlanDefinition, CapabilityStatement, OperationOutcome."""

from __future__ import annotations

from typing import Any

from fhir.resources.R4B.capabilitystatement import CapabilityStatement
from fhir.resources.R4B.careplan import CarePlan
from fhir.resources.R4B.operationoutcome import OperationOutcome
from fhir.resources.R4B.plandefinition import PlanDefinition
from flask.testing import FlaskClient

from tests.api.conftest import EXAMPLE_PLAN
from tests.api.contract import Contract

FHIR = "application/fhir+json"


def create(client: FlaskClient, auth: dict[str, str]) -> dict[str, Any]:
    return client.post("/v1/plans", json=EXAMPLE_PLAN, headers=auth).get_json()


def test_care_plan_is_a_proposal_until_confirmed(
    client: FlaskClient, auth: dict[str, str], contract: Contract
) -> None:
    plan = create(client, auth)
    path = f"/fhir/R4/CarePlan/{plan['id']}"

    before = client.get(path, headers=auth)
    confirmed = client.post(f"/v1/plans/{plan['id']}/confirm", headers=auth)
    after = client.get(path, headers=auth)
    negotiated = client.get(f"/v1/plans/{plan['id']}", headers={**auth, "Accept": FHIR})

    contract.check("GET", path, before)
    contract.check("POST", f"/v1/plans/{plan['id']}/confirm", confirmed)
    assert before.mimetype == FHIR
    CarePlan.model_validate(before.get_json())
    assert before.get_json()["intent"] == "proposal"
    assert confirmed.status_code == 200 and confirmed.get_json()["revision"] == 2
    assert after.get_json()["intent"] == "plan"
    assert negotiated.mimetype == FHIR and negotiated.get_json() == after.get_json()
    resource = after.get_json()
    assert resource["subject"]["identifier"]["value"] == "clinic-1234"
    assert resource["contained"][0]["resourceType"] == "Condition"
    assert resource["instantiatesCanonical"][0].endswith(
        "/fhir/R4/PlanDefinition/femoral-neck-compression-conservative|1.2.0"
    )


def test_plan_definition_and_metadata(client: FlaskClient, auth: dict[str, str]) -> None:
    definition = client.get(
        "/fhir/R4/PlanDefinition/femoral-neck-compression-conservative", headers=auth
    )
    metadata = client.get("/fhir/R4/metadata")

    PlanDefinition.model_validate(definition.get_json())
    CapabilityStatement.model_validate(metadata.get_json())
    assert definition.get_json()["version"] == "1.2.0"
    assert metadata.status_code == 200 and metadata.mimetype == FHIR


def test_fhir_errors_are_operation_outcomes(client: FlaskClient, auth: dict[str, str]) -> None:
    missing = client.get("/fhir/R4/CarePlan/nope", headers=auth)
    anonymous = client.get("/fhir/R4/CarePlan/nope")
    v1_missing = client.get("/v1/plans/nope", headers=auth)

    for response, status in ((missing, 404), (anonymous, 401)):
        assert response.status_code == status
        assert response.mimetype == FHIR
        OperationOutcome.model_validate(response.get_json())
    assert v1_missing.mimetype == "application/problem+json"
