"""Liveness and readiness for load balancers; no API key needed."""

from __future__ import annotations

from typing import Any

from flask import current_app
from flask.views import MethodView
from flask_smorest import Blueprint

from planner import __version__
from planner.schemas.api import HealthSchema

blp = Blueprint("health", __name__, description="Service health.")


@blp.route("/healthz")
class Health(MethodView):
    @blp.response(200, HealthSchema)
    @blp.doc(security=[])
    def get(self) -> dict[str, Any]:
        """Report that the service is up, with its version and protocol count"""
        planner = current_app.extensions["planner"]
        planner["store"].current_revision()  # fails (500) when the database is unreachable
        return {"status": "ok", "version": __version__, "protocols": len(planner["catalog"])}
