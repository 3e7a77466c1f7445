"""Idempotency keys, scoped API keys and the clinic-facing list filters."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from planner.store import Store
from tests.api.conftest import EXAMPLE_PLAN
from tests.api.contract import Contract


def test_a_retried_post_is_replayed_not_repeated(
    client: FlaskClient, auth: dict[str, str], store: Store, contract: Contract
) -> None:
    headers = {**auth, "Idempotency-Key": "order-7731"}

    first = client.post("/v1/plans", json=EXAMPLE_PLAN, headers=headers)
    again = client.post("/v1/plans", json=EXAMPLE_PLAN, headers=headers)

    contract.check("POST", "/v1/plans", again)
    assert first.status_code == again.status_code == 201
    assert again.headers["Idempotent-Replayed"] == "true"
    assert "Idempotent-Replayed" not in first.headers
    assert again.get_data() == first.get_data()
    assert again.headers["Location"] == first.headers["Location"]
    assert store.list_plans("clinic-a", limit=10, offset=0)[1] == 1


def test_the_same_key_with_another_body_is_422(
    client: FlaskClient, auth: dict[str, str], store: Store, contract: Contract
) -> None:
    headers = {**auth, "Idempotency-Key": "order-7732"}
    client.post("/v1/plans", json=EXAMPLE_PLAN, headers=headers)

    other = client.post("/v1/plans", json={**EXAMPLE_PLAN, "timezone": "UTC"}, headers=headers)

    contract.check("POST", "/v1/plans", other)
    assert other.status_code == 422
    assert "Idempotency-Key" in other.get_json()["errors"]
    assert store.list_plans("clinic-a", limit=10, offset=0)[1] == 1


def test_keys_are_per_organisation(
    client: FlaskClient, auth: dict[str, str], other_auth: dict[str, str], store: Store
) -> None:
    client.post("/v1/plans", json=EXAMPLE_PLAN, headers={**auth, "Idempotency-Key": "k"})
    theirs = client.post(
        "/v1/plans", json=EXAMPLE_PLAN, headers={**other_auth, "Idempotency-Key": "k"}
    )

    assert theirs.status_code == 201 and "Idempotent-Replayed" not in theirs.headers
    assert store.list_plans("clinic-b", limit=10, offset=0)[1] == 1


def test_concurrent_duplicates_make_one_plan(
    app: Flask, auth: dict[str, str], store: Store
) -> None:
    headers = {**auth, "Idempotency-Key": "burst-1"}
    answers: list[tuple[int, bytes]] = []

    def post() -> None:
        response = app.test_client().post("/v1/plans", json=EXAMPLE_PLAN, headers=headers)
        answers.append((response.status_code, response.get_data()))

    threads = [threading.Thread(target=post) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert {status for status, _ in answers} == {201}
    assert len({body for _, body in answers}) == 1
    assert store.list_plans("clinic-a", limit=10, offset=0)[1] == 1


def test_idempotency_applies_to_every_post(client: FlaskClient, auth: dict[str, str]) -> None:
    plan = client.post("/v1/plans", json=EXAMPLE_PLAN, headers=auth).get_json()
    headers = {**auth, "Idempotency-Key": "rotate-1"}
    path = f"/v1/plans/{plan['id']}/feed-token"

    first = client.post(path, headers=headers)
    again = client.post(path, headers=headers)

    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.get_json()["feed"] == first.get_json()["feed"]


@pytest.mark.parametrize(
    ("scopes", "method", "path", "allowed"),
    [
        (["plans:read"], "GET", "/v1/plans", True),
        (["plans:read"], "POST", "/v1/plans", False),
        (["plans:write"], "GET", "/v1/plans", False),
        (["plans:write"], "POST", "/v1/plans", True),
        (["plans:read"], "POST", "/v1/plans/{id}/feed-token", False),
        (["feeds:manage"], "POST", "/v1/plans/{id}/feed-token", True),
        (["admin"], "POST", "/v1/plans/{id}/feed-token", True),
        (["plans:read"], "GET", "/fhir/R4/CarePlan/{id}", True),
    ],
)
def test_scopes_limit_what_a_key_may_do(
    client: FlaskClient,
    auth: dict[str, str],
    store: Store,
    contract: Contract,
    scopes: list[str],
    method: str,
    path: str,
    allowed: bool,
) -> None:
    plan = client.post("/v1/plans", json=EXAMPLE_PLAN, headers=auth).get_json()
    _, secret = store.create_key("limited", "clinic-a", scopes=scopes)
    path = path.replace("{id}", plan["id"])
    body: Any = EXAMPLE_PLAN if path == "/v1/plans" and method == "POST" else None

    response = client.open(
        path, method=method, json=body, headers={"Authorization": f"Bearer {secret}"}
    )

    if path.startswith("/v1"):
        contract.check(method, path, response)
    if allowed:
        assert response.status_code < 400, response.get_data()
    else:
        assert response.status_code == 403
        assert response.get_json()["type"].endswith("insufficient_scope")
        assert "insufficient_scope" in response.headers["WWW-Authenticate"]
