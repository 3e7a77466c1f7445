"""The plan every part of the bench makes, so the HTTP, in-process and RSS figures
measure the same work."""

from __future__ import annotations

from datetime import date
from typing import Any

PLAN_ID = "3f2c9d4e-7a1b-4c5d-9e8f-0a1b2c3d4e5f"

#: Diagnosed this many days before today: every past session is then in the first
#: (protection) phase — 6 weeks with a fracture line — whose sessions need no
#: clinician's gate before a check-in.
DAYS_SINCE_DIAGNOSIS = 38


def plan_payload(diagnosis: date, *, timed: bool = True) -> dict[str, Any]:
    """A conservative femoral-neck plan; ``diagnosis`` in the past gives past sessions."""
    return {
        "diagnosis_date": diagnosis.isoformat(),
        "timezone": "UTC",
        "athlete": {"reference": "bench", "name": "A. Runner"},
        "injury": {
            "site": "femoral_neck",
            "type": "compression",
            "laterality": "left",
            "fracture_line_pct": 20,
        },
        "risk_factors": ["female"],
        "schedule": {"run_days": ["MO", "WE", "FR"], "session_time": "07:00" if timed else None},
    }
