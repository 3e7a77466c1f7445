"""Errors the planning core raises; the HTTP layer maps each ``code`` to a status."""

from __future__ import annotations


class PlannerError(Exception):
    """Base of every domain error; ``code`` is stable and machine-readable."""

    code = "planner_error"

    def __init__(self, detail: str, errors: dict[str, list[str]] | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.errors = errors or {}


class InvalidInjury(PlannerError):
    """The classification contradicts itself (domain.md A1): refused, never guessed."""

    code = "invalid_injury"


class InvalidRequest(PlannerError):
    """Dates, time zone or schedule preferences cannot produce a plan."""

    code = "invalid_request"


class NoMatchingProtocol(PlannerError):
    """No protocol in the catalog covers this site, type and triage outcome."""

    code = "no_matching_protocol"


class UnknownProtocol(PlannerError):
    code = "unknown_protocol"


class InvalidProtocol(PlannerError):
    """A protocol file breaks the format; ``errors`` maps field paths to messages."""

    code = "invalid_protocol"
