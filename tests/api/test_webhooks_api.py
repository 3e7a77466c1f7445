"""The /v1/webhooks blueprint through the test client, checked against the live OpenAPI spec.

Until ``create_app`` registers the blueprint, the fixture registers it on the test app
(and the problem codes it needs), so these tests run before and after the integration.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from planner.service import webhooks
from planner.service.delivery import Deliverer
from planner.store import Store
from planner.web import errors as web_errors
from planner.web import webhooks as webhooks_web
from planner.web.webhooks import start_background_delivery
from tests.api.contract import Contract
from tests.test_webhooks import Receiver, verify

#: Problem codes of the blueprint and their statuses (see planner.web.errors.STATUS_FOR_CODE).
CODES = {
    "webhook_not_found": 404,
    "delivery_not_found": 404,
    "invalid_webhook": 422,
    "webhook_disabled": 409,
}


@pytest.fixture
def webhook_app(app: Flask, monkeypatch: pytest.MonkeyPatch) -> Flask:
    if "webhooks" not in app.blueprints:
        api = app.extensions["flask-smorest"]["apis"][""]["ext_obj"]
        api.register_blueprint(webhooks_web.blp)
    for code, status in CODES.items():
        if code not in web_errors.STATUS_FOR_CODE:
            monkeypatch.setitem(web_errors.STATUS_FOR_CODE, code, status)
    app.config["WEBHOOKS_ALLOW_PRIVATE"] = True
    return app


@pytest.fixture
def client(webhook_app: Flask) -> FlaskClient:
    return webhook_app.test_client()


@pytest.fixture
def live_contract(webhook_app: Flask) -> Contract:
    """The spec the app documents right now (openapi.yaml follows once regenerated)."""
    api = webhook_app.extensions["flask-smorest"]["apis"][""]["ext_obj"]
    return Contract(api.spec.to_dict())


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    running = Receiver().start()
    yield running
    running.close()


def create(
    client: FlaskClient,
    auth: dict[str, str],
    contract: Contract | None = None,
    **overrides: Any,
) -> dict[str, Any]:
    body = {"url": "https://hooks.example.com/in", "event_types": ["plan.created"], **overrides}
    response = client.post("/v1/webhooks", json=body, headers=auth)
    if contract is not None:
        contract.check("POST", "/v1/webhooks", response)
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def test_create_list_show_and_delete(
    client: FlaskClient, auth: dict[str, str], live_contract: Contract
) -> None:
    response = client.post(
        "/v1/webhooks",
        json={
            "url": "https://hooks.example.com/in",
            "event_types": ["plan.created", "alert.raised"],
        },
        headers=auth,
    )
    live_contract.check("POST", "/v1/webhooks", response)
    assert response.status_code == 201
    created = response.get_json()
    assert response.headers["Location"] == f"/v1/webhooks/{created['id']}"
    assert created["secret"].startswith("whsec_")
    assert created["event_types"] == ["plan.created", "alert.raised"]
    assert created["disabled_at"] is None and created["previous_secret_expires_at"] is None
    assert created["links"] == {
        "self": f"/v1/webhooks/{created['id']}",
        "deliveries": f"/v1/webhooks/{created['id']}/deliveries",
    }

    listed = client.get("/v1/webhooks", headers=auth)
    live_contract.check("GET", "/v1/webhooks", listed)
    (item,) = listed.get_json()["items"]
    assert "secret" not in item  # shown once only
    assert item == {k: v for k, v in created.items() if k != "secret"}

    shown = client.get(created["links"]["self"], headers=auth)
    live_contract.check("GET", created["links"]["self"], shown)
    assert shown.get_json() == item

    deleted = client.delete(created["links"]["self"], headers=auth)
    live_contract.check("DELETE", created["links"]["self"], deleted)
    assert deleted.status_code == 204 and deleted.get_data() == b""
    gone = client.get(created["links"]["self"], headers=auth)
    live_contract.check("GET", created["links"]["self"], gone)
    assert gone.status_code == 404
    assert gone.get_json()["type"].endswith("/webhook_not_found")
    assert client.delete(created["links"]["self"], headers=auth).status_code == 404
    assert client.get("/v1/webhooks", headers=auth).get_json() == {"items": []}


def test_another_organisations_webhook_is_not_found(
    client: FlaskClient, auth: dict[str, str], other_auth: dict[str, str]
) -> None:
    theirs = create(client, other_auth)
    for method, path in [
        ("GET", theirs["links"]["self"]),
        ("DELETE", theirs["links"]["self"]),
        ("POST", f"{theirs['links']['self']}/secret"),
        ("GET", theirs["links"]["deliveries"]),
    ]:
        response = client.open(path, method=method, headers=auth)
        assert response.status_code == 404, (method, path)
        assert response.mimetype == "application/problem+json"
    assert client.get("/v1/webhooks", headers=auth).get_json() == {"items": []}
    assert client.get(theirs["links"]["self"], headers=other_auth).status_code == 200


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"url": "ftp://hooks.example.com/in", "event_types": ["plan.created"]}, "url"),
        ({"url": "https://user:pw@hooks.example.com/", "event_types": ["plan.created"]}, "url"),
        ({"url": "https://hooks.example.com/in", "event_types": ["plan.deleted"]}, "event_types.0"),
        ({"url": "https://hooks.example.com/in", "event_types": []}, "event_types"),
        ({"url": "https://hooks.example.com/in"}, "event_types"),
        ({"event_types": ["plan.created"]}, "url"),
        ({"url": "https://x.example", "event_types": ["plan.created"], "secret": "s"}, "secret"),
    ],
)
def test_invalid_webhooks_are_refused_field_by_field(
    client: FlaskClient,
    auth: dict[str, str],
    live_contract: Contract,
    body: dict[str, Any],
    field: str,
) -> None:
    response = client.post("/v1/webhooks", json=body, headers=auth)
    live_contract.check("POST", "/v1/webhooks", response)
    assert response.status_code == 422
    assert field in response.get_json()["errors"]
    assert client.get("/v1/webhooks", headers=auth).get_json() == {"items": []}


def test_private_receivers_are_refused_unless_configured(
    client: FlaskClient, auth: dict[str, str], webhook_app: Flask
) -> None:
    webhook_app.config["WEBHOOKS_ALLOW_PRIVATE"] = False
    for url in ("http://127.0.0.1:8080/in", "http://10.0.0.5/in", "http://[::1]/in"):
        response = client.post(
            "/v1/webhooks", json={"url": url, "event_types": ["plan.created"]}, headers=auth
        )
        assert response.status_code == 422, url
        problem = response.get_json()
        assert problem["type"].endswith("/invalid_webhook")
        assert "internal" in problem["errors"]["url"][0]

    webhook_app.config["WEBHOOKS_ALLOW_PRIVATE"] = True
    create(client, auth, url="http://127.0.0.1:8080/in")


def test_a_body_that_is_not_json_is_415(client: FlaskClient, auth: dict[str, str]) -> None:
    response = client.post("/v1/webhooks", data="url=x", headers=auth)
    assert response.status_code == 415


def test_a_key_is_needed_and_it_needs_the_webhooks_scope(
    client: FlaskClient, store: Store, live_contract: Contract
) -> None:
    assert client.get("/v1/webhooks").status_code == 401

    _, secret = store.create_key("reader", "clinic-a", ["plans:read", "plans:write"])
    response = client.get("/v1/webhooks", headers={"Authorization": f"Bearer {secret}"})
    live_contract.check("GET", "/v1/webhooks", response)
    assert response.status_code == 403
    assert response.get_json()["type"].endswith("/insufficient_scope")

    _, scoped = store.create_key("hooks", "clinic-a", ["webhooks:manage"])
    assert (
        client.get("/v1/webhooks", headers={"Authorization": f"Bearer {scoped}"}).status_code == 200
    )


def test_rotating_the_secret(
    client: FlaskClient, auth: dict[str, str], live_contract: Contract
) -> None:
    created = create(client, auth)
    path = f"{created['links']['self']}/secret"

    response = client.post(path, headers=auth)

    live_contract.check("POST", path, response)
    assert response.status_code == 201
    rotated = response.get_json()
    assert rotated["id"] == created["id"]
    assert rotated["secret"].startswith("whsec_") and rotated["secret"] != created["secret"]
    expires = datetime.fromisoformat(rotated["previous_secret_expires_at"])
    assert timedelta(hours=23) < expires - datetime.now(UTC) <= timedelta(hours=24)
    shown = client.get(created["links"]["self"], headers=auth).get_json()
    assert shown["previous_secret_expires_at"] == rotated["previous_secret_expires_at"]


def test_deliveries_are_listed_delivered_and_replayed(
    client: FlaskClient,
    auth: dict[str, str],
    store: Store,
    receiver: Receiver,
    live_contract: Contract,
) -> None:
    created = create(client, auth, url=receiver.url, event_types=["plan.created"])
    deliveries = created["links"]["deliveries"]
    now = datetime.now(UTC)
    for n in range(3):
        occurred = now - timedelta(seconds=3 - n)
        webhooks.enqueue(store, "clinic-a", "plan.created", {"n": n}, now=occurred)
    webhooks.enqueue(store, "clinic-b", "plan.created", {"n": 99}, now=now)  # not theirs

    listed = client.get(f"{deliveries}?page_size=2", headers=auth)
    live_contract.check("GET", f"{deliveries}?page_size=2", listed)
    page = listed.get_json()
    assert (page["total"], page["page"], page["page_size"]) == (3, 1, 2)
    assert [d["payload"]["n"] for d in page["items"]] == [2, 1]
    assert {d["status"] for d in page["items"]} == {"pending"}
    assert page["links"]["next"] == f"{deliveries}?page=2&page_size=2"
    assert page["links"]["prev"] is None

    assert Deliverer(store, allow_private=True).run_once() == 3
    assert len(receiver.requests) == 3
    assert all(
        verify(created["secret"], r.headers, r.body, datetime.now(UTC)) for r in receiver.requests
    )

    delivered = client.get(f"{deliveries}?status=delivered", headers=auth).get_json()
    assert delivered["total"] == 3
    first = delivered["items"][-1]
    assert first["status"] == "delivered" and first["last_status"] == 204
    assert first["attempts"] == 1 and first["next_attempt_at"] is None
    assert first["event_type"] == "plan.created" and first["webhook_id"] == created["id"]
    assert client.get(f"{deliveries}?status=pending", headers=auth).get_json()["total"] == 0
    assert client.get(f"{deliveries}?status=lost", headers=auth).status_code == 422

    one = client.get(f"{deliveries}/{first['id']}", headers=auth)
    live_contract.check("GET", f"{deliveries}/{first['id']}", one)
    assert one.get_json() == first

    replay_path = f"{deliveries}/{first['id']}/replay"
    replayed = client.post(replay_path, headers=auth)
    live_contract.check("POST", replay_path, replayed)
    assert replayed.status_code == 202
    body = replayed.get_json()
    assert body["id"] == first["id"] and body["status"] == "pending"
    assert body["replayed_at"] is not None and body["next_attempt_at"] is not None

    assert Deliverer(store, allow_private=True).run_once() == 1
    again = receiver.requests[-1]
    assert again.headers["webhook-id"] == first["id"]
    assert again.body == next(
        r.body for r in receiver.requests if r.headers["webhook-id"] == first["id"]
    )


def test_unknown_deliveries_are_not_found(
    client: FlaskClient,
    auth: dict[str, str],
    other_auth: dict[str, str],
    store: Store,
    live_contract: Contract,
) -> None:
    mine = create(client, auth)
    theirs = create(client, other_auth)
    (their_delivery,) = webhooks.enqueue(
        store, "clinic-b", "plan.created", {}, now=datetime.now(UTC)
    )

    for path in (
        f"{mine['links']['deliveries']}/nope/replay",
        f"{mine['links']['deliveries']}/{their_delivery}/replay",
        f"{theirs['links']['deliveries']}/{their_delivery}/replay",
    ):
        response = client.post(path, headers=auth)
        live_contract.check("POST", path, response)
        assert response.status_code == 404, path
    missing = client.get(f"{mine['links']['deliveries']}/nope", headers=auth)
    assert missing.status_code == 404
    assert missing.get_json()["type"].endswith("/delivery_not_found")


def test_a_disabled_webhook_cannot_replay(
    client: FlaskClient,
    auth: dict[str, str],
    store: Store,
    receiver: Receiver,
    live_contract: Contract,
) -> None:
    receiver.respond = lambda r: 410
    created = create(client, auth, url=receiver.url)
    (delivery_id,) = webhooks.enqueue(store, "clinic-a", "plan.created", {}, now=datetime.now(UTC))
    Deliverer(store, allow_private=True).run_once()

    shown = client.get(created["links"]["self"], headers=auth).get_json()
    assert shown["disabled_at"] is not None
    path = f"{created['links']['deliveries']}/{delivery_id}/replay"
    response = client.post(path, headers=auth)
    live_contract.check("POST", path, response)
    assert response.status_code == 409
    assert response.get_json()["type"].endswith("/webhook_disabled")


@pytest.mark.sqlite_only("in-process delivery is on by default on SQLite only")
def test_in_process_delivery_runs_on_sqlite_unless_switched_off(
    client: FlaskClient,
    auth: dict[str, str],
    webhook_app: Flask,
    store: Store,
    receiver: Receiver,
) -> None:
    webhook_app.config["WEBHOOKS_IN_PROCESS"] = False
    assert start_background_delivery(webhook_app) is None

    webhook_app.config["WEBHOOKS_IN_PROCESS"] = None  # the default: on for SQLite
    created = create(client, auth, url=receiver.url)
    background = start_background_delivery(webhook_app, interval=0.02)
    assert background is not None and background.running
    assert webhook_app.extensions["planner"]["webhook_delivery"] is background
    try:
        webhooks.enqueue(store, "clinic-a", "plan.created", {"n": 1}, now=datetime.now(UTC))
        deadline = time.monotonic() + 5
        while not receiver.requests and time.monotonic() < deadline:
            time.sleep(0.02)
    finally:
        background.stop()
    (got,) = receiver.requests
    assert verify(created["secret"], got.headers, got.body, datetime.now(UTC))
    assert not background.running
