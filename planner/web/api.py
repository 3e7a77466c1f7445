"""flask-smorest wiring: one documented error shape (problem+json) for every route."""

from __future__ import annotations

import http
from collections.abc import Callable
from typing import Any, TypeVar

import flask_smorest
from flask_smorest.spec import prepare_response  # type: ignore[attr-defined]

from planner.schemas.api import ProblemSchema
from planner.web.errors import PROBLEM_MIME

F = TypeVar("F", bound=Callable[..., Any])


class Api(flask_smorest.Api):  # type: ignore[misc]
    """Documents errors as ``application/problem+json`` with :class:`ProblemSchema`."""

    ERROR_SCHEMA = ProblemSchema
    DEFAULT_ERROR_RESPONSE_NAME = None

    def _register_error_handlers(self) -> None:
        """Error handlers are registered by ``planner.web.errors`` instead."""

    def _register_responses(self) -> None:
        for status in http.HTTPStatus:
            if status < 400:
                continue
            response = {"description": status.phrase, "schema": self.ERROR_SCHEMA}
            prepare_response(response, self.spec, PROBLEM_MIME)
            self.spec.components.response(status.name, response, lazy=True)


def errors(blp: flask_smorest.Blueprint, *statuses: int) -> Callable[[F], F]:
    """Document the problem responses a view can give (a route that can answer 401
    can also answer 403: a valid key without the scope the route needs)."""
    if 401 in statuses and 403 not in statuses:
        statuses = (*statuses, 403)

    def decorate(view: F) -> F:
        for status in statuses:
            view = blp.alt_response(status, response=http.HTTPStatus(status).name)(view)
        return view

    return decorate


def idempotent(blp: flask_smorest.Blueprint) -> Callable[[F], F]:
    """Document ``Idempotency-Key`` (and the replay marker) on a POST operation."""
    from planner.web.idempotency import PARAMETER

    def decorate(view: F) -> F:
        view = blp.doc(parameters=[PARAMETER])(view)
        return blp.alt_response(
            409, response="CONFLICT", description="A request with this key is still running"
        )(view)

    return decorate
