"""The protocol catalog: what the service can plan, with versions and references."""

from __future__ import annotations

from typing import Any

from flask.views import MethodView
from flask_smorest import Blueprint

from planner import links
from planner.catalog import Catalog
from planner.domain.model import Protocol
from planner.schemas.api import ProtocolListSchema, ProtocolSchema
from planner.web.api import errors
from planner.web.auth import protect
from planner.web.common import planner

blp = protect(
    Blueprint(
        "protocols",
        __name__,
        url_prefix=links.PROTOCOLS,
        description="Evidence-based protocols the planner follows, as validated data.",
    )
)


def catalog() -> Catalog:
    return planner().catalog


@blp.route("")
class Protocols(MethodView):
    @blp.response(200, ProtocolListSchema)
    @errors(blp, 401)
    def get(self) -> dict[str, Any]:
        """List the protocol catalog

        Each entry says which sites, fracture sides and triage outcomes it covers.
        """
        return {"items": list(catalog())}


@blp.route("/<protocol_id>")
class ProtocolDetail(MethodView):
    @blp.response(200, ProtocolSchema)
    @errors(blp, 401, 404)
    def get(self, protocol_id: str) -> Protocol:
        """Get one protocol: phases, session templates, criteria and references"""
        return catalog().get(protocol_id)
