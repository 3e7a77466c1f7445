"""Render the OpenAPI document from the code: ``python -m planner.openapi > openapi.yaml``."""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import yaml

API_DESCRIPTION = """\
Turns an MRI-based bone-stress-injury classification and a diagnosis date into a staged,
dated return-to-run plan (or an urgent surgical referral), exported as JSON and iCalendar.

Authentication: every /v1 route needs `Authorization: Bearer <api key>`; keys are created
with `planner keys create NAME --org ORG` and see only their organisation's plans (others'
answer 404).

Errors are RFC 9457 `application/problem+json` with `type`, `title`, `status`, `detail`
and, for invalid input, `errors` mapping each field path (e.g. `injury.fracture_line`) to
its messages: 400 malformed body, 401 missing or bad key, 404 unknown or not yours,
413 body over 64 KiB, 415 body not JSON, 422 invalid values.

The service plans; it does not diagnose. Every plan carries its protocol's id, version and
references.
"""


def render_spec() -> str:
    """The spec as YAML, built from a throwaway app (no real database touched)."""
    from planner.web import create_app

    with tempfile.TemporaryDirectory() as scratch:
        app = create_app(
            {
                "DATABASE_URL": f"sqlite:///{Path(scratch) / 'spec.sqlite3'}",
                "UPGRADE_ON_START": False,
            }
        )
        try:
            spec = app.extensions["flask-smorest"]["apis"][""]["ext_obj"].spec.to_dict()
        finally:
            app.extensions["planner"]["store"].dispose()
    spec["info"]["description"] = API_DESCRIPTION
    order = ["openapi", "info", "tags", "security", "paths", "components"]
    ordered = {key: spec[key] for key in order if key in spec}
    ordered.update({k: v for k, v in spec.items() if k not in ordered})
    return yaml.safe_dump(ordered, sort_keys=False, allow_unicode=True, width=100)


if __name__ == "__main__":
    sys.stdout.write(render_spec())
