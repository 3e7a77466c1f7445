"""Which writers turn a plan into its stored bytes: chosen by a setting.

The service renders every revision twice over — the plan document and its calendar
feed — and either may be written by the fast writers (what production runs) or by
their references (marshmallow, icalendar: the oracles, and the "before" of the
benchmarks). Both give the same bytes; only the cost differs.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from planner.domain.model import Plan
from planner.export import to_ical, to_json
from planner.export.to_ical import FeedOptions

__all__ = [
    "EXPORTER_NAMES",
    "FAST_EXPORTERS",
    "REFERENCE_EXPORTERS",
    "Exporters",
    "exporters_named",
]


@dataclass(frozen=True, slots=True)
class Exporters:
    """The two writers of a revision's bytes."""

    #: The stored plan document (without ``feed`` and ``links``).
    plan_json: Callable[[Plan], bytes]
    #: The calendar feed for the given options.
    calendar: Callable[[Plan, FeedOptions], bytes]


def _reference_plan_json(plan: Plan) -> bytes:
    """``PlanSchema().dump`` through marshmallow, written by the stdlib encoder."""
    return to_json.dumps(to_json.render_reference(plan))


FAST_EXPORTERS = Exporters(plan_json=to_json.render_bytes, calendar=to_ical.render)
REFERENCE_EXPORTERS = Exporters(plan_json=_reference_plan_json, calendar=to_ical.render_reference)

#: The setting's values, in the order they are offered.
EXPORTER_NAMES: dict[str, Exporters] = {"fast": FAST_EXPORTERS, "reference": REFERENCE_EXPORTERS}


def exporters_named(name: str) -> Exporters:
    """The exporters a setting names: ``"fast"`` or ``"reference"``."""
    try:
        return EXPORTER_NAMES[name]
    except KeyError:
        choices = " or ".join(repr(choice) for choice in EXPORTER_NAMES)
        raise ValueError(f"unknown exporters {name!r}: choose {choices}") from None
