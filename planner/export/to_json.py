"""Plan → JSON document (design.md §4), through the marshmallow response schema."""

from __future__ import annotations

import json
from typing import Any

from planner.domain.model import Plan
from planner.schemas.api import PlanSchema

_PLAN_SCHEMA = PlanSchema()


def plan_links(plan_id: str) -> dict[str, str]:
    """Where the plan lives in the API; relative, so any host name serves it."""
    return {"self": f"/v1/plans/{plan_id}", "ical": f"/v1/plans/{plan_id}.ics"}


def render(plan: Plan) -> dict[str, Any]:
    """The plan as a JSON-ready dict, links included."""
    document: dict[str, Any] = _PLAN_SCHEMA.dump(plan)
    document["links"] = plan_links(plan.id)
    return document


def dumps(document: dict[str, Any]) -> bytes:
    """Stable bytes: fixed key order from the schema, UTF-8, no ASCII escaping."""
    return json.dumps(document, ensure_ascii=False, separators=(",", ":")).encode()
