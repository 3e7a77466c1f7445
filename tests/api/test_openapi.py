"""openapi.yaml is generated from the code: any drift fails here.

Regenerate on purpose with ``python -m planner.openapi > openapi.yaml``.
"""

from __future__ import annotations

import yaml
from openapi_spec_validator import validate

from planner.openapi import render_spec
from tests.api.contract import SPEC_PATH


def test_openapi_yaml_matches_the_code() -> None:
    committed = SPEC_PATH.read_text(encoding="utf-8")

    assert render_spec() == committed, (
        "openapi.yaml is out of date: run `python -m planner.openapi > openapi.yaml` "
        "and review the diff"
    )


def test_openapi_yaml_is_a_valid_openapi_document() -> None:
    validate(yaml.safe_load(SPEC_PATH.read_text(encoding="utf-8")))


def test_every_route_of_the_app_is_documented(app) -> None:  # type: ignore[no-untyped-def]
    spec = yaml.safe_load(SPEC_PATH.read_text(encoding="utf-8"))
    documented = set(spec["paths"])
    for rule in app.url_map.iter_rules():
        if rule.endpoint in ("static",) or rule.rule.startswith("/openapi"):
            continue
        path = rule.rule.replace("<", "{").replace(">", "}")
        assert path in documented, f"{path} is served but not in openapi.yaml"


def test_every_post_documents_idempotency_key() -> None:
    spec = yaml.safe_load(SPEC_PATH.read_text(encoding="utf-8"))
    for path, operations in spec["paths"].items():
        if "post" in operations:
            names = [p.get("name") for p in operations["post"].get("parameters", [])]
            assert "Idempotency-Key" in names, path
