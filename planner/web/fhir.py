"""FHIR R4 read access for clinic systems: CarePlan, PlanDefinition, CapabilityStatement.

FHIR routes answer ``application/fhir+json`` and report errors as OperationOutcome
(see ``planner.web.errors``); /v1 routes keep problem+json.
"""

from __future__ import annotations

import json
from typing import Any

from flask import Response, current_app, request
from flask.views import MethodView
from flask_smorest import Blueprint

from planner import __version__
from planner.export import to_fhir
from planner.web.auth import PLAN_SCOPES, api_key_check, current_organisation
from planner.web.common import planner

FHIR_MIME = "application/fhir+json"
FHIR_OBJECT = {"type": "object", "description": "A FHIR R4 resource (JSON)."}
OPERATION_OUTCOME = {
    "type": "object",
    "description": "A FHIR R4 OperationOutcome",
    "required": ["resourceType", "issue"],
    "properties": {"resourceType": {"const": "OperationOutcome"}, "issue": {"type": "array"}},
}

blp = Blueprint(
    "fhir",
    __name__,
    url_prefix="/fhir/R4",
    description="FHIR R4 (JSON) views of plans and protocols, for clinic systems.",
)


_require_api_key = api_key_check(PLAN_SCOPES)


@blp.before_request
def _authenticate():  # type: ignore[no-untyped-def]
    """Every FHIR read needs a key (reads of plans) except the CapabilityStatement."""
    if request.endpoint != "fhir.Metadata":
        return _require_api_key()
    return None


def outcomes(*statuses: int):  # type: ignore[no-untyped-def]
    """Document FHIR errors: OperationOutcome as application/fhir+json."""

    def decorate(view):  # type: ignore[no-untyped-def]
        for status in statuses:
            view = blp.alt_response(status, schema=OPERATION_OUTCOME, content_type=FHIR_MIME)(view)
        return view

    return decorate


def base_url() -> str:
    return (current_app.config.get("PUBLIC_BASE_URL") or request.host_url).rstrip("/")


def fhir_response(resource: dict[str, Any], status: int = 200) -> Response:
    return Response(json.dumps(resource, ensure_ascii=False), status=status, mimetype=FHIR_MIME)


def care_plan_resource(organisation: str, plan_id: str) -> dict[str, Any]:
    """The plan as a CarePlan: a proposal until a clinician confirms it."""
    record = planner().get_plan(organisation, plan_id)
    plan = planner().load(record)
    intent = "plan" if record.confirmed_at is not None else "proposal"
    return to_fhir.care_plan(plan, base_url=base_url(), intent=intent)


@blp.route("/CarePlan/<plan_id>")
class CarePlan(MethodView):
    @blp.response(200, FHIR_OBJECT, content_type=FHIR_MIME)
    @outcomes(400, 401, 404)
    def get(self, plan_id: str) -> Response:
        """Read a plan as a FHIR R4 CarePlan

        `intent` is `proposal` until a clinician confirms the plan
        (`POST /v1/plans/{id}/confirm`), then `plan`. The injury is a contained
        Condition; phases and sessions are `activity[].detail`.
        """
        return fhir_response(care_plan_resource(current_organisation(), plan_id))


@blp.route("/PlanDefinition/<protocol_id>")
class PlanDefinition(MethodView):
    @blp.response(200, FHIR_OBJECT, content_type=FHIR_MIME)
    @outcomes(400, 401, 404)
    def get(self, protocol_id: str) -> Response:
        """Read a protocol as a FHIR R4 PlanDefinition (clinical-protocol)"""
        protocol = planner().catalog.get(protocol_id)
        return fhir_response(to_fhir.plan_definition(protocol, base_url=base_url()))


@blp.route("/metadata")
class Metadata(MethodView):
    @blp.doc(security=[])
    @blp.response(200, FHIR_OBJECT, content_type=FHIR_MIME)
    @outcomes(400)
    def get(self) -> Response:
        """The server's FHIR CapabilityStatement (no key needed)"""
        return fhir_response(
            to_fhir.capability_statement(base_url=base_url(), software_version=__version__)
        )
