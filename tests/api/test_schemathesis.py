"""Property-based contract test: schemathesis generates requests from openapi.yaml.

Every operation is exercised in-process with valid and invalid inputs: no 5xx, every
status, content type and body as documented, and invalid input refused with a 4xx.
(Schema-valid input may still be refused when it breaks a clinical rule — a
femoral-neck injury needs its side — so "positive data acceptance" is not checked.)
"""

from __future__ import annotations

from typing import Any

import pytest
import schemathesis
from flask import Flask
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import (
    content_type_conformance,
    negative_data_rejection,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

from tests.api.contract import SPEC_PATH

SCHEMA = schemathesis.openapi.from_path(SPEC_PATH)
OPERATIONS = [result.ok() for result in SCHEMA.get_all_operations()]
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    negative_data_rejection,
]
CASES = [
    pytest.param(op, mode, id=f"{mode.value}-{op.label}")
    for op in OPERATIONS
    for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE)
    # Negative cases need something to break: path-only operations have nothing but an
    # unconstrained string, which schemathesis cannot make invalid inside a URL.
    if mode is GenerationMode.POSITIVE or op.query or op.body
]


@pytest.mark.parametrize(("operation", "mode"), CASES)
def test_every_operation_honours_the_contract(
    operation: Any, mode: GenerationMode, app: Flask, auth: dict[str, str]
) -> None:
    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(
        max_examples=10,
        deadline=None,
        suppress_health_check=list(HealthCheck),
        derandomize=True,
        database=None,
    )
    def check(case: Any) -> None:
        headers = {**(case.headers or {}), **auth}
        case.call_and_validate(app=app, headers=headers, checks=CHECKS)

    check()
