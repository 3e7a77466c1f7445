"""The functional core: injury → triage → protocol → dated plan.

Rule: nothing in this package does I/O or reads a clock or the environment; time
and identity are inputs. It imports only the standard library (nothing of Flask,
marshmallow, SQLAlchemy, icalendar or dateutil, which the installed package does not
even depend on), which ``tests/test_architecture.py`` enforces.
"""

from planner.domain.errors import (
    InvalidInjury,
    InvalidProtocol,
    InvalidRequest,
    NoMatchingProtocol,
    PlannerError,
    UnknownProtocol,
)
from planner.domain.injury import classify
from planner.domain.model import (
    Alert,
    Athlete,
    FractureSide,
    Injury,
    Pathway,
    Phase,
    Plan,
    PlanRequest,
    Preferences,
    Protocol,
    RiskFactor,
    Session,
    SessionKind,
    Site,
    Triage,
    Weekday,
)
from planner.domain.planning import make_plan
from planner.domain.scheduling import weekdays_in_order

__all__ = [
    "Alert",
    "Athlete",
    "FractureSide",
    "Injury",
    "InvalidInjury",
    "InvalidProtocol",
    "InvalidRequest",
    "NoMatchingProtocol",
    "Pathway",
    "Phase",
    "Plan",
    "PlanRequest",
    "PlannerError",
    "Preferences",
    "Protocol",
    "RiskFactor",
    "Session",
    "SessionKind",
    "Site",
    "Triage",
    "UnknownProtocol",
    "Weekday",
    "classify",
    "make_plan",
    "weekdays_in_order",
]
