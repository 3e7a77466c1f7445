"""The HTTP half: the two servers (``planner serve`` and the floor) as processes, the
plans and calls they are driven with, and the interleaved floor/endpoint rounds."""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from bench import HOST, REPO, child_env
from bench.load import Call, Load, Run
from bench.plans import DAYS_SINCE_DIAGNOSIS, plan_payload

#: (label, key, minimum ratio to the floor) in report order.
HTTP_TARGETS: list[tuple[str, str, float]] = [
    ("GET feed, If-None-Match (304)", "feed_304", 0.85),
    ("GET feed (200)", "feed_200", 0.70),
    ("GET /v1/plans/{id}", "plan_get", 0.60),
    ("POST /v1/plans", "plan_post", 0.25),
    ("POST …/check-ins", "check_in", 0.25),
]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


@dataclass
class Server:
    """A server process on a loopback port, in its own process group so that stopping
    it stops its workers too."""

    name: str
    command: list[str]
    env: dict[str, str]
    log: Path
    cwd: Path | None = None
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with self.log.open("wb") as log:
            self.process = subprocess.Popen(
                [*self.command, "--host", HOST, "--port", str(self.port)],
                env=self.env,
                cwd=self.cwd,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group: stopped as one
            )

    def wait_ready(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                raise RuntimeError(f"{self.name} exited: see {self.log}")
            with contextlib.suppress(OSError, http.client.HTTPException):
                status, _, _ = request(self.port, "GET", "/healthz", timeout=2)
                if status == 200:
                    return
            time.sleep(0.2)
        raise RuntimeError(f"{self.name} did not answer /healthz in {timeout:.0f} s")

    def stop(self) -> None:
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.kill(process.pid, signal.SIGTERM)  # gunicorn's master stops its workers
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)  # the group we started, only
            process.wait(timeout=5)


def request(
    port: int,
    method: str,
    path: str,
    body: Any = None,
    headers: dict[str, str] | None = None,
    timeout: float = 30,
) -> tuple[int, dict[str, str], bytes]:
    """One request on loopback, outside the timed runs (setting up, checking)."""
    connection = http.client.HTTPConnection(HOST, port, timeout=timeout)
    try:
        payload = json.dumps(body).encode() if body is not None else None
        all_headers = dict(headers or {})
        if payload is not None:
            all_headers["Content-Type"] = "application/json"
        connection.request(method, path, body=payload, headers=all_headers)
        response = connection.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        connection.close()


@dataclass
class Fixtures:
    """What the endpoints are driven with: plans that are only read, and (plan,
    session) pairs for check-ins, each reported once (a session counts once)."""

    key: str
    read_calls: dict[str, list[Call]]
    check_ins: list[Call]


def prepare(port: int, key: str, *, read_plans: int, check_in_plans: int) -> Fixtures:
    """Create the plans over HTTP and check that feeds answer 200 and 304 as expected."""
    auth = {"Authorization": f"Bearer {key}"}
    today = datetime.now(UTC).date()
    payload = plan_payload(today - timedelta(days=DAYS_SINCE_DIAGNOSIS))
    plans = []
    for _ in range(read_plans + check_in_plans):
        status, _, body = request(port, "POST", "/v1/plans", payload, auth)
        if status != 201:
            raise RuntimeError(f"POST /v1/plans answered {status}: {body[:300]!r}")
        plans.append(json.loads(body))
    readers, writers = plans[:read_plans], plans[read_plans:]

    feeds_200, feeds_304, gets = [], [], []
    for plan in readers:
        feed = plan["links"]["feed"]
        status, headers, _ = request(port, "GET", feed)
        etag = headers.get("ETag") or headers.get("Etag")
        if status != 200 or not etag:
            raise RuntimeError(f"GET feed answered {status} without an ETag")
        status, _, _ = request(port, "GET", feed, headers={"If-None-Match": etag})
        if status != 304:
            raise RuntimeError(f"GET feed with If-None-Match answered {status}, not 304")
        feeds_200.append(Call("GET", feed))
        feeds_304.append(Call("GET", feed, {"If-None-Match": etag}))
        gets.append(Call("GET", f"/v1/plans/{plan['id']}", auth))
    posted = json.dumps(payload)
    posts = [Call("POST", "/v1/plans", {**auth, "Content-Type": "application/json"}, posted)]

    # Round-robin over the plans, so that each plan collects as few events as possible
    # (a check-in replays the plan's events: its cost grows with their number).
    past = [
        [s["uid"] for s in plan["sessions"] if date.fromisoformat(s["date"]) < today]
        for plan in writers
    ]
    check_ins = []
    for index in range(max((len(p) for p in past), default=0)):
        for plan, uids in zip(writers, past, strict=True):
            if index < len(uids):
                check_ins.append(
                    Call(
                        "POST",
                        f"/v1/plans/{plan['id']}/check-ins",
                        {**auth, "Content-Type": "application/json"},
                        json.dumps(
                            {
                                "session_uid": uids[index],
                                "pain_during": 0,
                                "pain_after": 0,
                                "pain_next_morning": 0,
                            }
                        ),
                    )
                )
    status, _, answer = request(
        port, check_ins[0].method, check_ins[0].path, json.loads(check_ins[0].body or "{}"), auth
    )
    if status not in (200, 201):
        raise RuntimeError(f"check-in answered {status}: {answer[:300]!r}")
    return Fixtures(
        key=key,
        read_calls={
            "feed_304": feeds_304,
            "feed_200": feeds_200,
            "plan_get": gets,
            "plan_post": posts,
        },
        check_ins=check_ins[1:],
    )


@dataclass
class Measured:
    """An endpoint's runs and the floor run just before each: noise between rounds
    moves both, so the ratio is taken per round."""

    runs: list[Run] = field(default_factory=list)
    floors: list[Run] = field(default_factory=list)

    @property
    def ratio(self) -> float:
        return statistics.median(r.rps / f.rps for r, f in zip(self.runs, self.floors, strict=True))

    def median(self, attribute: str) -> float:
        return float(statistics.median(getattr(r, attribute) for r in self.runs))


def drive(
    load: Load,
    floor: Server,
    planner: Server,
    fixtures: Fixtures,
    *,
    rounds: int,
    seconds: float,
    progress: Callable[[str], None],
) -> tuple[Measured, dict[str, Measured]]:
    """Interleaved rounds: floor, endpoint, floor, endpoint … for every endpoint."""
    floor_calls = [Call("GET", "/healthz")]
    all_floors = Measured()
    results = {key: Measured() for _, key, _ in HTTP_TARGETS}
    per_round = len(fixtures.check_ins) // rounds
    for number in range(rounds):
        for label, key, _ in HTTP_TARGETS:
            if key == "check_in":
                calls = fixtures.check_ins[number * per_round : (number + 1) * per_round]
            else:
                calls = fixtures.read_calls[key]
            floor_run = load.run(floor.port, floor_calls, seconds)
            run = load.run(planner.port, calls, seconds)
            if key == "check_in" and run.requests > len(calls):
                progress(
                    f"check-ins ran out ({run.requests} > {len(calls)}): raise --check-in-plans"
                )
            all_floors.runs.append(floor_run)
            results[key].runs.append(run)
            results[key].floors.append(floor_run)
            progress(
                f"round {number + 1}/{rounds} {label}: {run.rps:.0f}/s "
                f"(floor {floor_run.rps:.0f}/s)" + (f", {run.errors} errors" if run.errors else "")
            )
    return all_floors, results


def servers(
    *, workers: int, database_url: str, reference_exporters: bool, workdir: Path
) -> tuple[Server, Server]:
    """``planner serve`` and the floor, not started. ``PLANNER_EXPORTERS`` picks the
    served app's exporters (always set, so a stray value in the caller's environment
    cannot change what the report says was measured); the floor, a ``bench`` module,
    runs from the repository root."""
    env = {**os.environ, "PLANNER_DATABASE_URL": database_url}
    exporters = "reference" if reference_exporters else "fast"
    planner = Server(
        "planner serve",
        [planner_command(), "serve", "--workers", str(workers)],
        {**env, "PLANNER_EXPORTERS": exporters},
        workdir / "planner.log",
    )
    floor = Server(
        "floor",
        [sys.executable, "-m", "bench.floor", "--workers", str(workers)],
        child_env(env),
        workdir / "floor.log",
        cwd=REPO,
    )
    return planner, floor


def planner_command() -> str:
    """The ``planner`` script installed beside this interpreter."""
    return str(Path(sys.executable).parent / "planner")


def create_key(env: dict[str, str]) -> str:
    """A fresh API key from ``planner keys create`` (printed alone on its last line)."""
    created = subprocess.run(
        [planner_command(), "keys", "create", "bench", "--org", "bench"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    return created.stdout.strip().splitlines()[-1]
