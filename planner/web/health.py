"""Liveness and readiness for load balancers; no API key needed."""

from __future__ import annotations

from typing import Any

from flask.views import MethodView
from flask_smorest import Blueprint

from planner import __version__
from planner.schemas.api import HealthSchema
from planner.web.common import planner

blp = Blueprint("health", __name__, description="Service health.")


@blp.route("/healthz")
class Health(MethodView):
    @blp.response(200, HealthSchema)
    @blp.doc(security=[])
    def get(self) -> dict[str, Any]:
        """Report that the service is up, with its version and protocol count"""
        service = planner()
        service.database_revision()  # fails (500) when the database is unreachable
        return {"status": "ok", "version": __version__, "protocols": len(service.catalog)}
