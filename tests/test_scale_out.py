"""Two ``planner serve`` instances on one PostgreSQL database, as behind a load balancer.

Real processes (gunicorn, two workers each) on a real server (``tests.pg``): whatever
one instance writes, the other serves at once and byte for byte, and concurrent writers
spread over both lose nothing. Skips without PostgreSQL locally; fails under CI.
"""

from __future__ import annotations

import os
import random
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest

from tests.pg import PostgresServer
from tests.serving import Answer, call, planner_serve

pytestmark = pytest.mark.slow

CONCURRENT_CHECK_INS = 50


def planner_command(*args: str, database_url: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PLANNER_DATABASE_URL": database_url}
    return subprocess.run(
        [sys.executable, "-m", "planner", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.fixture
def instances(postgres_server: PostgresServer) -> Iterator[tuple[str, str, str]]:
    """(key, base URL of instance A, of instance B) on a new, empty database that
    ``planner db upgrade`` migrated."""
    with postgres_server.database(migrated=False) as url:
        for _ in range(2):  # the second run finds nothing to do
            upgraded = planner_command("db", "upgrade", database_url=url)
            assert upgraded.returncode == 0, upgraded.stderr
        created = planner_command("keys", "create", "scale", "--org", "clinic", database_url=url)
        assert created.returncode == 0, created.stderr
        key = created.stdout.strip().splitlines()[-1]
        with ExitStack() as stack:
            environment = {"PLANNER_DATABASE_URL": url}
            first = stack.enter_context(planner_serve(environment, workers=2))
            second = stack.enter_context(planner_serve(environment, workers=2))
            yield key, first, second


def plan_body(diagnosed_days_ago: int) -> dict[str, Any]:
    diagnosis = datetime.now(UTC).date() - timedelta(days=diagnosed_days_ago)
    return {
        "diagnosis_date": diagnosis.isoformat(),
        "timezone": "UTC",
        "athlete": {"reference": "scale-out"},
        "injury": {"site": "femoral_neck", "type": "compression", "fracture_line_pct": 20},
        "schedule": {"run_days": ["MO", "WE", "FR"], "session_time": "07:00"},
    }


def create_plan(base: str, key: str, *, diagnosed_days_ago: int) -> tuple[Answer, Any]:
    created = call("POST", base + "/v1/plans", key=key, body=plan_body(diagnosed_days_ago))
    assert created.status == 201, created.body
    return created, created.json()


def test_what_one_instance_writes_the_other_serves_at_once(
    instances: tuple[str, str, str],
) -> None:
    key, a, b = instances
    created, plan = create_plan(a, key, diagnosed_days_ago=38)
    path = f"/v1/plans/{plan['id']}"
    feed = plan["links"]["feed"]

    from_a, from_b = call("GET", a + path, key=key), call("GET", b + path, key=key)
    assert from_a.status == from_b.status == 200
    assert from_a.headers["ETag"] == from_b.headers["ETag"] == created.headers["ETag"]
    assert from_a.body == from_b.body == created.body
    feed_a, feed_b = call("GET", a + feed), call("GET", b + feed)
    assert feed_a.status == feed_b.status == 200
    assert feed_a.body == feed_b.body
    for header in ("ETag", "Last-Modified"):
        assert feed_a.headers[header] == feed_b.headers[header]
    revalidated = call("GET", b + feed, headers={"If-None-Match": feed_a.headers["ETag"]})
    assert revalidated.status == 304

    today = datetime.now(UTC).date()
    session = next(s for s in plan["sessions"] if date.fromisoformat(s["date"]) < today)
    # Night pain is a red flag: the plan stops and its future sessions are cancelled, so
    # the calendar itself changes.
    check_in = {"session_uid": session["uid"], "red_flags": ["night_pain"]}
    recorded = call("POST", a + path + "/check-ins", key=key, body=check_in)
    assert recorded.status == 201, recorded.body

    after_b = call("GET", b + feed, headers={"If-None-Match": feed_a.headers["ETag"]})
    assert after_b.status == 200  # B sees A's write on its very next request
    assert after_b.body != feed_a.body
    after_a = call("GET", a + feed)
    assert after_b.body == after_a.body and after_b.headers["ETag"] == after_a.headers["ETag"]
    plan_a, plan_b = call("GET", a + path, key=key), call("GET", b + path, key=key)
    assert plan_b.json()["revision"] == plan["revision"] + 1
    assert plan_a.body == plan_b.body and plan_a.headers["ETag"] == plan_b.headers["ETag"]


def test_concurrent_check_ins_across_instances_lose_no_update(
    instances: tuple[str, str, str],
) -> None:
    key, a, b = instances
    _, plan = create_plan(a, key, diagnosed_days_ago=90)
    path = f"/v1/plans/{plan['id']}"
    # Let the first two phases' sessions and the walking phase be reportable: a
    # clinician records the gate of each that ends with a review as met on the day it
    # ended (a phase without a review has no gate: it ends on its own).
    reviewed = {s["phase"] for s in plan["sessions"] if s["kind"] == "review"}
    for phase in [p for p in plan["phases"][:2] if p["key"] in reviewed]:
        gate = {"met": True, "date": phase["end_date"]}
        answer = call("POST", a + f"{path}/phases/{phase['key']}/gate", key=key, body=gate)
        assert answer.status in (200, 201), answer.body
    current = call("GET", a + path, key=key).json()
    reportable_phases = {p["key"] for p in current["phases"][:3]}
    today = datetime.now(UTC).date()
    sessions = [
        s["uid"]
        for s in current["sessions"]
        if s["phase"] in reportable_phases and date.fromisoformat(s["date"]) < today
    ][:CONCURRENT_CHECK_INS]
    assert len(sessions) == CONCURRENT_CHECK_INS
    start_revision = current["revision"]

    def report(index: int) -> tuple[int, list[int]]:
        """One client: alternate instances; half send If-Match, half a plain write; on
        409/412 read the plan again and retry. Returns (final status, refusals seen)."""
        rng = random.Random(index)
        refusals: list[int] = []
        base = (a, b)[index % 2]
        for attempt in range(200):
            headers = {}
            if index % 4 < 2:
                headers["If-Match"] = call("GET", base + path, key=key).headers["ETag"]
            answer = call(
                "POST",
                base + path + "/check-ins",
                key=key,
                body={"session_uid": sessions[index]},
                headers=headers,
            )
            if answer.status not in (409, 412):
                return answer.status, refusals
            refusals.append(answer.status)
            base = (a, b)[(index + attempt + 1) % 2]  # retry through the other instance
            time.sleep(rng.uniform(0, 0.05 * min(attempt + 1, 10)))
        return 0, refusals

    with ThreadPoolExecutor(CONCURRENT_CHECK_INS) as pool:
        results = list(pool.map(report, range(CONCURRENT_CHECK_INS)))

    assert [status for status, _ in results] == [201] * CONCURRENT_CHECK_INS, results
    assert {code for _, seen in results for code in seen} <= {409, 412}
    final_a, final_b = call("GET", a + path, key=key), call("GET", b + path, key=key)
    assert final_a.body == final_b.body
    assert final_a.json()["revision"] == start_revision + CONCURRENT_CHECK_INS
    events = call("GET", a + path + "/check-ins", key=key).json()
    recorded = [e["payload"]["session_uid"] for e in events["items"] if e["kind"] == "check_in"]
    assert sorted(recorded) == sorted(sessions)  # each exactly once
    revisions = call("GET", b + path + "/revisions", key=key).json()["items"]
    numbers = sorted(r["revision"] for r in revisions)
    assert numbers == list(range(1, start_revision + CONCURRENT_CHECK_INS + 1))
    feed = plan["links"]["feed"]
    assert call("GET", a + feed).body == call("GET", b + feed).body
