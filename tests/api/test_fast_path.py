"""The WSGI fast path answers exactly like the Flask views it stands in front of."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.http import http_date
from werkzeug.test import Client

from planner.store import Store
from planner.web.fast_path import FastPath
from tests.api.conftest import EXAMPLE_PLAN
from tests.clock import Clock


class Counting:
    """Wraps the Flask app behind the fast path and counts what reaches it."""

    def __init__(self, app: Callable[..., Iterable[bytes]]) -> None:
        self.app = app
        self.calls = 0

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        self.calls += 1
        return self.app(environ, start_response)


@pytest.fixture
def paths(app: Flask) -> tuple[Client, Client, Counting]:
    """(through the fast path, Flask alone, the counter of requests Flask saw)."""
    fast = app.wsgi_app
    assert isinstance(fast, FastPath)
    behind = Counting(fast.app)
    fast.app = behind
    return Client(fast), Client(behind.app), behind


@pytest.fixture
def feed(client: FlaskClient, auth: dict[str, str], clock: Clock) -> dict[str, Any]:
    body = {**EXAMPLE_PLAN, "feed": {"busy": True}}
    response = client.post("/v1/plans", json=body, headers=auth)
    assert response.status_code == 201
    links = response.get_json()["links"]
    etag = client.get(links["feed"]).headers["ETag"]
    return {"feed": links["feed"], "busy": links["busy_feed"], "etag": etag}


def answer(client: Client, method: str, path: str, headers: dict[str, str]) -> tuple[Any, ...]:
    response = client.open(path, method=method, headers=headers)
    return response.status_code, sorted(response.headers.items()), response.get_data()


SERVED_FAST = [
    ("GET", "feed", {}),
    ("HEAD", "feed", {}),
    ("GET", "busy", {}),
    ("GET", "feed", {"If-None-Match": "{etag}"}),
    ("GET", "feed", {"If-None-Match": 'W/{etag}, "other"'}),
    ("GET", "feed", {"If-None-Match": "*"}),
    ("GET", "feed", {"If-None-Match": '"other"'}),
    ("HEAD", "feed", {"If-None-Match": "{etag}"}),
    ("GET", "feed", {"If-Modified-Since": "{now}"}),
    ("GET", "feed", {"If-Modified-Since": "Mon, 01 Jan 2001 00:00:00 GMT"}),
    ("GET", "feed", {"If-Modified-Since": "not a date"}),
    ("GET", "feed", {"If-None-Match": '"other"', "If-Modified-Since": "{now}"}),
    ("GET", "feed", {"Accept": "text/calendar"}),
    ("GET", "feed", {"Accept": "*/*"}),
]


@pytest.mark.parametrize(("method", "which", "headers"), SERVED_FAST)
def test_fast_path_answers_like_the_view(
    paths: tuple[Client, Client, Counting],
    feed: dict[str, Any],
    method: str,
    which: str,
    headers: dict[str, str],
) -> None:
    fast, flask_only, behind = paths
    values = {"etag": feed["etag"], "now": http_date(9_999_999_999)}
    headers = {name: value.format(**values) for name, value in headers.items()}
    behind.calls = 0

    served = answer(fast, method, feed[which], headers)

    assert behind.calls == 0, "the fast path handed this request to Flask"
    assert served == answer(flask_only, method, feed[which], headers)


@pytest.mark.parametrize(
    ("path", "headers"),
    [
        ("{feed}", {"Accept": "text/html,application/xhtml+xml,*/*;q=0.8"}),  # help page
        ("{feed}?download=1", {}),
        ("/feeds/" + "A" * 43 + ".ics", {}),  # unknown token: a 404 problem
        ("/feeds/.ics", {}),
    ],
)
def test_everything_else_is_left_to_the_app(
    paths: tuple[Client, Client, Counting],
    feed: dict[str, Any],
    path: str,
    headers: dict[str, str],
) -> None:
    fast, flask_only, behind = paths
    path = path.format(**feed)
    behind.calls = 0

    served = answer(fast, "GET", path, headers)

    assert behind.calls == 1
    assert served == answer(flask_only, "GET", path, headers)


def test_a_database_failure_is_answered_by_the_app(
    paths: tuple[Client, Client, Counting],
    feed: dict[str, Any],
    app: Flask,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    fast, _, behind = paths
    store = app.extensions["planner"]["store"]

    def broken(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("database went away")

    monkeypatch.setattr(store, "get_feed_head", broken)
    behind.calls = 0

    response = fast.get(feed["feed"])

    assert behind.calls == 1  # the app saw it, and answers with a problem document
    assert response.status_code == 500
    assert response.headers["Content-Type"] == "application/problem+json"


def test_an_expired_grace_period_goes_through_the_app_and_rerenders(
    client: FlaskClient,
    auth: dict[str, str],
    clock: Clock,
    paths: tuple[Client, Client, Counting],
) -> None:
    fast, _, behind = paths
    plan = client.post("/v1/plans", json=EXAMPLE_PLAN, headers=auth).get_json()
    assert client.post(f"/v1/plans/{plan['id']}/cancel", json={}, headers=auth).status_code < 300
    behind.calls = 0
    before = fast.get(plan["links"]["feed"])
    assert behind.calls == 0 and b"STATUS:CANCELLED" in before.get_data()

    clock.on("2026-12-31")
    after = fast.get(plan["links"]["feed"])

    assert behind.calls == 1
    assert after.status_code == 200 and b"STATUS:CANCELLED" not in after.get_data()
    fast.get(plan["links"]["feed"])
    assert behind.calls == 1  # re-rendered once: later polls are fast again


# ----------------------------------------------------------------------------- plan reads


@pytest.fixture
def plan_read(
    client: FlaskClient, auth: dict[str, str], other_auth: dict[str, str], store: Store
) -> dict[str, Any]:
    """A plan, its path and ETag, and keys: its own, another organisation's, one without
    the plans:read scope and a revoked one."""
    created = client.post("/v1/plans", json=EXAMPLE_PLAN, headers=auth)
    assert created.status_code == 201
    _, feeds_only = store.create_key("feeds", "clinic-a", scopes=["feeds:manage"])
    revoked_key, revoked = store.create_key("gone", "clinic-a")
    store.revoke_key(str(revoked_key.id))
    return {
        "path": created.headers["Location"],
        "etag": created.headers["ETag"],
        "auth": auth["Authorization"],
        "other": other_auth["Authorization"],
        "unscoped": f"Bearer {feeds_only}",
        "revoked": f"Bearer {revoked}",
    }


PLAN_SERVED_FAST = [
    ("GET", {}),
    ("HEAD", {}),
    ("GET", {"Accept": "application/json"}),
    ("GET", {"Accept": "*/*"}),
    ("GET", {"If-None-Match": "{etag}"}),
    ("GET", {"If-None-Match": '"other", W/{etag}'}),
    ("GET", {"If-None-Match": "*"}),
    ("GET", {"If-None-Match": '"other"'}),
    ("HEAD", {"If-None-Match": "{etag}"}),
]


@pytest.mark.parametrize(("method", "headers"), PLAN_SERVED_FAST)
def test_plan_reads_on_the_fast_path_answer_like_the_view(
    paths: tuple[Client, Client, Counting],
    plan_read: dict[str, Any],
    method: str,
    headers: dict[str, str],
) -> None:
    fast, flask_only, behind = paths
    headers = {
        "Authorization": plan_read["auth"],
        **{name: value.format(**plan_read) for name, value in headers.items()},
    }
    behind.calls = 0

    served = answer(fast, method, plan_read["path"], headers)

    assert behind.calls == 0, "the fast path handed this request to Flask"
    assert served == answer(flask_only, method, plan_read["path"], headers)


@pytest.mark.parametrize(
    ("path", "authorization", "headers", "status"),
    [
        ("{path}", None, {}, 401),
        ("{path}", "Bearer sbk_not-a-key", {}, 401),
        ("{path}", "Basic dXNlcjpwYXNz", {}, 401),
        ("{path}", "{revoked}", {}, 401),
        ("{path}", "{unscoped}", {}, 403),
        ("{path}", "{other}", {}, 404),  # another organisation's plan looks missing
        ("/v1/plans/no-such-plan", "{auth}", {}, 404),
        ("{path}", "{auth}", {"Accept": "application/fhir+json"}, 200),
        ("{path}?revision=1", "{auth}", {}, 200),
        ("{path}?unknown=1", "{auth}", {}, 422),
        ("{path}.ics", "{auth}", {}, 200),
        ("{path}/revisions", "{auth}", {}, 200),
        ("/v1/plans/", "{auth}", {}, 404),
    ],
)
def test_plan_reads_the_fast_path_cannot_answer_go_to_the_app(
    paths: tuple[Client, Client, Counting],
    plan_read: dict[str, Any],
    path: str,
    authorization: str | None,
    headers: dict[str, str],
    status: int,
) -> None:
    fast, flask_only, behind = paths
    if authorization is not None:
        headers = {**headers, "Authorization": authorization.format(**plan_read)}
    path = path.format(**plan_read)
    behind.calls = 0

    served = answer(fast, "GET", path, headers)

    assert behind.calls == 1
    assert served[0] == status
    assert served == answer(flask_only, "GET", path, headers)
