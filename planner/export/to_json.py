"""Plan → JSON document (design.md §4), through the marshmallow response schema.

The stored document leaves out what can change without a new revision — the feed
settings and the links (a feed token can be rotated) — and :func:`finish` appends
them when the document is served, so a read never re-renders the plan.
"""

from __future__ import annotations

import json
from typing import Any

from planner.domain.model import Plan
from planner.schemas.api import PlanSchema

_PLAN_SCHEMA = PlanSchema()


def render(plan: Plan) -> dict[str, Any]:
    """The plan as a JSON-ready dict, without ``feed`` and ``links``."""
    document: dict[str, Any] = _PLAN_SCHEMA.dump(plan)
    return document


def dumps(document: dict[str, Any]) -> bytes:
    """Stable bytes: fixed key order from the schema, UTF-8, no ASCII escaping."""
    return json.dumps(document, ensure_ascii=False, separators=(",", ":")).encode()


def finish(stored: bytes, feed: dict[str, Any], links: dict[str, Any]) -> bytes:
    """The served document: the stored bytes with ``feed`` and ``links`` appended."""
    tail = dumps({"feed": feed, "links": links})
    return stored[:-1] + b"," + tail[1:]
