"""The feed's WSGI fast path answers exactly like the Flask view it stands in front of."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.http import http_date
from werkzeug.test import Client

from planner.web.feed_path import FeedFastPath
from tests.api.conftest import EXAMPLE_PLAN, Clock


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
    assert isinstance(fast, FeedFastPath)
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
