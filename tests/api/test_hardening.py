"""Inputs that once cost a 500 or reached what they should not: each reproduced as it was
found, then held to a clear 4xx problem or to the safe behaviour."""

from __future__ import annotations

import base64
import json

import pytest
from flask.testing import FlaskClient

from tests.api.conftest import EXAMPLE_PLAN
from tests.api.contract import Contract


def _cursor(value: object) -> str:
    return base64.urlsafe_b64encode(json.dumps(value).encode()).decode().rstrip("=")


@pytest.mark.parametrize(
    "cursor",
    [
        "WyIyMDI2LTAxLTAxVDAwOjAwOjAwIiwgIngiXQ",  # as found: a naive datetime
        _cursor(["2026-01-01T00:00:00", "x"]),
        _cursor(["not a date", "x"]),
        _cursor(["2026-01-01T00:00:00+00:00"]),
        _cursor({"created": "2026-01-01T00:00:00+00:00"}),
    ],
)
def test_a_forged_cursor_is_a_422_not_a_500(
    client: FlaskClient, auth: dict[str, str], contract: Contract, cursor: str
) -> None:
    response = client.get(f"/v1/plans?cursor={cursor}", headers=auth)

    contract.check("GET", "/v1/plans", response)
    assert response.status_code == 422
    assert response.mimetype == "application/problem+json"
    assert "cursor" in response.get_json()["errors"]


@pytest.mark.parametrize(
    "content_type",
    [
        "application/json; charset=utf-16",
        "application/json; charset=latin-1",
        "application/problem+json",
        "application/json-patch+json",
        "text/plain",
    ],
)
def test_a_body_that_is_not_json_in_utf8_is_a_415(
    client: FlaskClient, auth: dict[str, str], content_type: str
) -> None:
    body = json.dumps(EXAMPLE_PLAN)

    response = client.post("/v1/plans", data=body, headers={**auth, "Content-Type": content_type})

    assert response.status_code == 415
    assert response.get_json()["type"].endswith("unsupported_media_type")
    assert client.get("/v1/plans", headers=auth).get_json()["total"] == 0  # nothing made


@pytest.mark.parametrize(
    "content_type", ["application/json", "application/json; charset=utf-8", "Application/JSON"]
)
def test_json_in_utf8_is_accepted(
    client: FlaskClient, auth: dict[str, str], content_type: str
) -> None:
    body = json.dumps(EXAMPLE_PLAN)

    response = client.post("/v1/plans", data=body, headers={**auth, "Content-Type": content_type})

    assert response.status_code == 201
