"""``scripts/bench``: what a request and a plan cost, as ratios to a bare-Flask floor.

It starts ``planner serve --workers N`` on a loopback port (database:
``PLANNER_DATABASE_URL``, else a fresh SQLite file in a temp directory) and, under
the same gunicorn configuration, ``planner.bench_floor`` — a bare Flask app whose
``GET /healthz`` answers a JSON hello. It creates a key and some plans (diagnosed
in the past, so sessions exist to check in), then drives both servers from ``wrk``
in interleaved rounds — floor, endpoint, floor, endpoint … — and reports per
endpoint the median requests/s and p50/p99 latency, and the median of the ratios to
the floor run just before it. In-process it times building a plan and writing its
JSON, writing a 100-session iCalendar, and the least a plan POST must render (with
the best ratio to the floor that leaves a write), and in a child process it creates
10,000 plans through the service layer on SQLite and compares its peak RSS with
that after 100. Everything stays on 127.0.0.1, every run is bounded, and the
servers are stopped at the end.

``wrk`` comes from Debian (``apt-get install wrk``, done here when possible); without
it a small threaded Python load generator stands in and the report says so — its
absolute numbers are lower, its ratios still comparable.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import os
import re
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

HOST = "127.0.0.1"  # loopback only, never anything else
PLAN_ID = "3f2c9d4e-7a1b-4c5d-9e8f-0a1b2c3d4e5f"

#: (label, key, minimum ratio to the floor) in report order.
HTTP_TARGETS: list[tuple[str, str, float]] = [
    ("GET feed, If-None-Match (304)", "feed_304", 0.85),
    ("GET feed (200)", "feed_200", 0.70),
    ("GET /v1/plans/{id}", "plan_get", 0.60),
    ("POST /v1/plans", "plan_post", 0.25),
    ("POST …/check-ins", "check_in", 0.25),
]
BUILD_JSON_TARGET_US = 2000.0
ICS_TARGET_US = 8000.0
RSS_TARGET_MB = 50.0


# ----------------------------------------------------------------------------- plans


def plan_payload(diagnosis: date, *, timed: bool = True) -> dict[str, Any]:
    """A conservative femoral-neck plan; ``diagnosis`` in the past gives past sessions."""
    return {
        "diagnosis_date": diagnosis.isoformat(),
        "timezone": "UTC",
        "athlete": {"reference": "bench", "name": "A. Runner"},
        "injury": {
            "site": "femoral_neck",
            "type": "compression",
            "laterality": "left",
            "fracture_line_pct": 20,
        },
        "risk_factors": ["female"],
        "schedule": {"run_days": ["MO", "WE", "FR"], "session_time": "07:00" if timed else None},
    }


# ----------------------------------------------------------------------------- processes


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


@dataclass
class Server:
    name: str
    command: list[str]
    env: dict[str, str]
    log: Path
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with self.log.open("wb") as log:
            self.process = subprocess.Popen(
                [*self.command, "--host", HOST, "--port", str(self.port)],
                env=self.env,
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

    def worker_pids(self) -> list[int]:
        if self.process is None:
            return []
        children = Path(f"/proc/{self.process.pid}/task/{self.process.pid}/children")
        with contextlib.suppress(OSError):
            return [int(pid) for pid in children.read_text().split()]
        return []


def request(
    port: int,
    method: str,
    path: str,
    body: Any = None,
    headers: dict[str, str] | None = None,
    timeout: float = 30,
) -> tuple[int, dict[str, str], bytes]:
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


# ----------------------------------------------------------------------------- load


@dataclass(frozen=True)
class Call:
    method: str
    path: str
    headers: dict[str, str] = field(default_factory=dict)
    body: str | None = None


@dataclass
class Run:
    rps: float
    p50_ms: float
    p99_ms: float
    requests: int
    errors: int  # non-2xx/3xx answers and socket errors


def _lua_string(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return f'"{escaped}"'


def lua_script(calls: Sequence[Call]) -> str:
    """A wrk script cycling through ``calls`` (each wrk run gets a fresh Lua state)."""
    rows = []
    for call in calls:
        headers = ", ".join(
            f"[{_lua_string(k)}] = {_lua_string(v)}" for k, v in call.headers.items()
        )
        body = _lua_string(call.body) if call.body is not None else "nil"
        method, path = _lua_string(call.method), _lua_string(call.path)
        rows.append(f"  {{{method}, {path}, {{{headers}}}, {body}}},")
    return "\n".join(
        [
            "local calls = {",
            *rows,
            "}",
            "local formatted = {}",
            "for i, c in ipairs(calls) do formatted[i] = wrk.format(c[1], c[2], c[3], c[4]) end",
            "local i = 0",
            "request = function()",
            "  i = i % #formatted + 1",
            "  return formatted[i]",
            "end",
            "",
        ]
    )


_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 60e3}


def _duration_ms(text: str) -> float:
    match = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text)
    if match is None:
        raise ValueError(f"unexpected wrk duration {text!r}")
    return float(match.group(1)) * _UNITS[match.group(2)]


def parse_wrk(output: str) -> Run:
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1))  # type: ignore[union-attr]
    p50 = _duration_ms(re.search(r"\s50%\s+(\S+)", output).group(1))  # type: ignore[union-attr]
    p99 = _duration_ms(re.search(r"\s99%\s+(\S+)", output).group(1))  # type: ignore[union-attr]
    total = int(re.search(r"(\d+) requests in", output).group(1))  # type: ignore[union-attr]
    errors = 0
    if match := re.search(r"Non-2xx or 3xx responses: (\d+)", output):
        errors += int(match.group(1))
    if match := re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output
    ):
        # gunicorn's sync workers close every connection after answering, so wrk
        # meets a read error now and then when it reuses one: only count the rest.
        errors += int(match.group(1)) + int(match.group(3)) + int(match.group(4))
    return Run(rps=rps, p50_ms=p50, p99_ms=p99, requests=total, errors=errors)


class Wrk:
    name = "wrk"

    def __init__(self, binary: str, workdir: Path, connections: int, threads: int) -> None:
        self.binary, self.workdir = binary, workdir
        self.connections, self.threads = connections, threads

    def run(self, port: int, calls: Sequence[Call], seconds: float) -> Run:
        script = self.workdir / "calls.lua"
        script.write_text(lua_script(calls))
        result = subprocess.run(
            [
                self.binary,
                f"-t{self.threads}",
                f"-c{self.connections}",
                f"-d{seconds:g}s",
                "--timeout",
                "10s",
                "--latency",
                "-s",
                str(script),
                f"http://{HOST}:{port}",
            ],
            capture_output=True,
            text=True,
            timeout=seconds + 60,
            check=True,
        )
        return parse_wrk(result.stdout)


class PythonLoad:
    """The stand-in when wrk cannot be had: closed-loop threads, one connection per
    request (as gunicorn's sync workers close them anyway)."""

    name = "python threads"

    def __init__(self, connections: int) -> None:
        self.connections = connections

    def run(self, port: int, calls: Sequence[Call], seconds: float) -> Run:
        latencies: list[float] = []
        errors = [0]
        lock = threading.Lock()
        next_call = iter(range(10**9))
        deadline = time.monotonic() + seconds

        def loop() -> None:
            mine: list[float] = []
            failed = 0
            while time.monotonic() < deadline:
                with lock:
                    call = calls[next(next_call) % len(calls)]
                started = time.perf_counter()
                try:
                    connection = http.client.HTTPConnection(HOST, port, timeout=10)
                    body = call.body.encode() if call.body is not None else None
                    connection.request(call.method, call.path, body=body, headers=call.headers)
                    response = connection.getresponse()
                    response.read()
                    connection.close()
                    if response.status >= 400:
                        failed += 1
                except (OSError, http.client.HTTPException):
                    failed += 1
                mine.append(time.perf_counter() - started)
            with lock:
                latencies.extend(mine)
                errors[0] += failed

        started = time.monotonic()
        threads = [threading.Thread(target=loop) for _ in range(self.connections)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(seconds + 30)
        elapsed = time.monotonic() - started
        latencies.sort()
        count = len(latencies)
        return Run(
            rps=count / elapsed,
            p50_ms=latencies[count // 2] * 1e3 if count else float("nan"),
            p99_ms=latencies[min(count - 1, int(count * 0.99))] * 1e3 if count else float("nan"),
            requests=count,
            errors=errors[0],
        )


def find_wrk(install: bool) -> str | None:
    """wrk from PATH, else from Debian's packages when we are root and may install."""
    found = shutil.which("wrk")
    if found or not install or os.geteuid() != 0 or not shutil.which("apt-get"):
        return found
    print("wrk is missing: installing it from Debian's packages (apt-get install wrk) …")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for command in (["apt-get", "update", "-qq"], ["apt-get", "install", "-y", "-qq", "wrk"]):
        with contextlib.suppress(subprocess.SubprocessError, OSError):
            subprocess.run(command, env=env, capture_output=True, timeout=300, check=True)
    return shutil.which("wrk")


# ----------------------------------------------------------------------------- HTTP bench


@dataclass
class Fixtures:
    """What the endpoints are driven with: plans that are only read, and (plan,
    session) pairs for check-ins, each reported once (a session counts once)."""

    key: str
    read_calls: dict[str, list[Call]]
    check_ins: list[Call]


def prepare(port: int, key: str, *, read_plans: int, check_in_plans: int) -> Fixtures:
    auth = {"Authorization": f"Bearer {key}"}
    today = datetime.now(UTC).date()
    # Diagnosed 38 days ago: every past session is in the first (protection) phase —
    # 6 weeks with a fracture line — whose sessions need no clinician's gate first.
    payload = plan_payload(today - timedelta(days=38))
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
    body = json.dumps(payload)
    posts = [Call("POST", "/v1/plans", {**auth, "Content-Type": "application/json"}, body)]

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
    runs: list[Run] = field(default_factory=list)
    floors: list[Run] = field(default_factory=list)

    @property
    def ratio(self) -> float:
        return statistics.median(r.rps / f.rps for r, f in zip(self.runs, self.floors, strict=True))

    def median(self, attribute: str) -> float:
        return statistics.median(getattr(r, attribute) for r in self.runs)


def drive(
    load: Wrk | PythonLoad,
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


# ----------------------------------------------------------------------------- in-process


def _median_us(function: Callable[[], object], *, repeat: int, warmup: int = 3) -> float:
    for _ in range(warmup):
        function()
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        function()
        times.append(time.perf_counter() - started)
    return statistics.median(times) * 1e6


def in_process(repeat: int) -> dict[str, float]:
    """Median µs: build + JSON of the default conservative plan; iCalendar of a
    100-session plan; and the marshmallow/icalendar references they replace."""
    from planner.catalog import load_catalog
    from planner.domain import PlanRequest, Preferences, classify, make_plan
    from planner.export import to_ical, to_json

    catalog = load_catalog()
    created = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
    default = PlanRequest(
        diagnosis_date=date(2026, 11, 20),
        injury=classify(site="femoral_neck", type="compression", fracture_line_pct=20),
    )

    def build(request: PlanRequest = default) -> Any:
        return make_plan(request, catalog, plan_id=PLAN_ID, created_at=created)

    timed = PlanRequest(
        diagnosis_date=date(2026, 11, 20),
        injury=default.injury,
        preferences=Preferences(session_time="07:00", timezone="America/New_York"),
    )
    plan = build(timed)
    hundred = plan.__class__(**{**_fields(plan), "sessions": plan.sessions[:100]})
    assert len(hundred.sessions) == 100
    return {
        **{
            f"write_work_{kind}": us
            for kind, us in write_work_us(catalog, created, repeat=repeat).items()
        },
        "build_json": _median_us(lambda: to_json.render_bytes(build()), repeat=repeat),
        "build": _median_us(build, repeat=repeat),
        "json": _median_us(lambda: to_json.render_bytes(plan), repeat=repeat),
        "build_json_reference": _median_us(
            lambda: to_json.dumps(to_json.render_reference(build())), repeat=max(repeat // 10, 5)
        ),
        "build_json_stdlib": _median_us(
            lambda: to_json.dumps(to_json.render(build())), repeat=repeat
        ),
        "build_json_timed": _median_us(lambda: to_json.render_bytes(build(timed)), repeat=repeat),
        "ics_100": _median_us(lambda: to_ical.render(hundred), repeat=repeat),
        "ics_100_reference": _median_us(
            lambda: to_ical.render_reference(hundred), repeat=max(repeat // 20, 5)
        ),
    }


def write_work_us(catalog: Any, created: datetime, *, repeat: int) -> dict[str, float]:
    """Median µs of the least the HTTP run's writes must do in-process when calendars are
    rendered once per revision and never on a GET: for ``"post"``, make the plan the bench
    POSTs (same payload, 38 days after diagnosis) and write its JSON and iCalendar; for
    ``"check_in"``, revise that plan with a check-in of its first past session and write
    the revision's. Validation, the state blob, storage and HTTP all come on top."""
    from planner import services
    from planner.domain.planning import planning_context
    from planner.domain.progress import revise
    from planner.export import to_ical, to_json
    from planner.schemas.api import FeedSettingsSchema, PlanCreateSchema

    today = created.date()
    payload = PlanCreateSchema().load(plan_payload(today - timedelta(days=38)))
    options = services.feed_options(FeedSettingsSchema().load({}))  # what the POST gets

    def make() -> Any:
        return services.build_plan(payload, catalog, plan_id=PLAN_ID, created_at=created)

    def render(plan: Any) -> None:
        to_json.render_bytes(plan)
        to_ical.render(plan, options)

    plan = make()
    protocol = catalog.get(plan.protocol.id)
    context = planning_context(plan.request.injury, plan.selection)
    past = next(s.uid for s in plan.sessions if s.date < today)  # as the HTTP run does
    check_in = services.event_from_payload("check_in", {"session_uid": past}, today)

    def check() -> None:
        revised, _ = revise(plan, protocol, check_in, context=context, today=today, at=created)
        render(revised)

    return {
        "post": _median_us(lambda: render(make()), repeat=repeat),
        "check_in": _median_us(check, repeat=repeat),
    }


def write_ceiling(floor_rps: float, workers: int, write_us: float) -> float:
    """The best ratio to the floor a write could reach if it cost the floor's request
    plus ``write_us`` of worker time (each of ``workers`` serves ``floor_rps / workers``)."""
    floor_us = 1e6 * workers / floor_rps
    return floor_us / (floor_us + write_us)


def _fields(obj: Any) -> dict[str, Any]:
    from dataclasses import fields as dataclass_fields

    return {f.name: getattr(obj, f.name) for f in dataclass_fields(obj)}


def _rss_now_kb() -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def rss_child(counts: Sequence[int], database_url: str) -> dict[str, Any]:
    """Runs in a child process: create plans through the service layer and report the
    peak (and current) RSS after each count."""
    from planner.catalog import load_catalog
    from planner.schemas.api import PlanCreateSchema
    from planner.services import Planner
    from planner.store import Store

    store = Store(database_url)
    store.upgrade()
    planner = Planner(catalog=load_catalog(), store=store)
    today = datetime.now(UTC).date()
    # as the API hands it over: validated and loaded by the request schema
    payload = PlanCreateSchema().load(plan_payload(today - timedelta(days=38)))
    made, report, started = 0, [], time.monotonic()
    for count in counts:
        while made < count:
            planner.create_plan("bench-rss", payload)
            made += 1
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
        report.append({"plans": made, "peak_kb": peak, "rss_kb": _rss_now_kb()})
    store.dispose()
    return {"points": report, "seconds": time.monotonic() - started}


def measure_rss(counts: Sequence[int], workdir: Path) -> dict[str, Any]:
    url = f"sqlite:///{workdir / 'rss.sqlite3'}"  # always SQLite: a worker's own memory
    result = subprocess.run(
        [sys.executable, "-m", "planner.bench", "_rss", url, *map(str, counts)],
        capture_output=True,
        text=True,
        timeout=3600,
    )
    if result.returncode != 0:
        raise RuntimeError(f"the RSS child failed:\n{result.stderr[-3000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


# ----------------------------------------------------------------------------- report


def verdict(ok: bool) -> str:
    return "PASS" if ok else "MISS"


def report(
    args: argparse.Namespace,
    load_name: str | None,
    floors: Measured | None,
    results: dict[str, Measured] | None,
    local: dict[str, float] | None,
    rss: dict[str, Any] | None,
) -> list[str]:
    lines = [
        f"stride-back bench — {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {os.cpu_count()} CPUs, "
        f"Python {sys.version.split()[0]}",
    ]
    if results is not None and floors is not None:
        lines += [
            f"HTTP: gunicorn sync × {args.workers} workers, load {load_name}, "
            f"{args.connections} connections, {args.rounds} interleaved rounds × "
            f"{args.duration:g} s, database {args.database_label}"
            + (" [REFERENCE exporters]" if args.reference_exporters else ""),
            "",
            f"{'endpoint':34} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8} {'× floor':>8} "
            f"{'target':>7}  result",
            f"{'floor: bare Flask GET /healthz':34} {floors.median('rps'):8.0f} "
            f"{floors.median('p50_ms'):8.2f} {floors.median('p99_ms'):8.2f} {1:8.2f}",
        ]
        for label, key, target in HTTP_TARGETS:
            measured = results[key]
            errors = sum(r.errors for r in measured.runs)
            lines.append(
                f"{label:34} {measured.median('rps'):8.0f} {measured.median('p50_ms'):8.2f} "
                f"{measured.median('p99_ms'):8.2f} {measured.ratio:8.2f} "
                f"{'≥ ' + format(target, '.2f'):>7}  "
                f"{verdict(measured.ratio >= target and not errors)}"
                + (f"  ({errors} errors)" if errors else "")
            )
        lines.append("")
    if local is not None:
        writer = "orjson" if _orjson_available() else "stdlib json (orjson not installed)"
        lines += [
            f"{'in-process (median µs)':34} {'now':>8} {'oracle':>8} {'target':>8}  result",
            f"{'build + JSON, default plan':34} {local['build_json']:8.0f} "
            f"{local['build_json_reference']:8.0f} {'≤ 2000':>8}  "
            f"{verdict(local['build_json'] <= BUILD_JSON_TARGET_US)}",
            f"{'  of which make_plan':34} {local['build']:8.0f}",
            f"{'  the same with stdlib json':34} {local['build_json_stdlib']:8.0f}",
            f"{'build + JSON, timed 07:00 New York':34} {local['build_json_timed']:8.0f}",
            f"{'iCalendar, 100 timed sessions':34} {local['ics_100']:8.0f} "
            f"{local['ics_100_reference']:8.0f} {'≤ 8000':>8}  "
            f"{verdict(local['ics_100'] <= ICS_TARGET_US)}",
            f"{'least work of a plan POST':34} {local['write_work_post']:8.0f}",
            f"{'least work of a check-in':34} {local['write_work_check_in']:8.0f}",
            "  (make or revise the bench's plan and write its JSON and iCalendar, as rendering",
            "  once per revision needs; validation, state, storage and HTTP come on top)",
            f"(JSON writer: {writer}; "
            "oracle = the reference exporters: marshmallow dump + stdlib json, icalendar)",
            "",
        ]
        if floors is not None:
            rps = floors.median("rps")
            post, check = (
                write_ceiling(rps, args.workers, local[f"write_work_{kind}"])
                for kind in ("post", "check_in")
            )
            lines += [
                "Writes that did only that least work on top of the floor's request would reach",
                f"{post:.2f} × floor (plan POST) and {check:.2f} × floor (check-in); the targets "
                "ask 0.25",
                "(floor cost per request = workers / floor req/s).",
                "",
            ]
    if rss is not None:
        small, large = rss["points"][0], rss["points"][-1]
        delta = (large["peak_kb"] - small["peak_kb"]) / 1024
        lines += [
            f"{'worker RSS (service layer, SQLite)':34} {'plans':>8} {'peak MB':>8} {'now MB':>8}",
            *(
                f"{'':34} {p['plans']:8d} {p['peak_kb'] / 1024:8.1f} {p['rss_kb'] / 1024:8.1f}"
                for p in rss["points"]
            ),
            f"{'difference':34} {'':8} {delta:8.1f} {'≤ 50':>8}  {verdict(delta <= RSS_TARGET_MB)}"
            f"   ({rss['seconds']:.0f} s)",
        ]
    return lines


def _orjson_available() -> bool:
    from planner.export import to_json

    return to_json._orjson_dumps is not None


# ----------------------------------------------------------------------------- main


def _serve_reference(argv: list[str]) -> None:
    """``planner serve`` with the exporters swapped for their references (icalendar,
    marshmallow): the "before" of the HTTP numbers."""
    from planner import cli
    from planner.export import to_ical, to_json

    to_ical.render = to_ical.render_reference  # type: ignore[assignment]
    to_json.render = to_json.render_reference  # type: ignore[assignment]
    sys.argv = ["planner", "serve", *argv]
    cli.main()


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="scripts/bench",
        description="Measure the service against a bare-Flask floor (see README, Performance).",
    )
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers (default 2)")
    parser.add_argument("--rounds", type=int, default=5, help="interleaved rounds (default 5)")
    parser.add_argument("--duration", type=float, default=3.0, help="seconds per run (default 3)")
    parser.add_argument(
        "--connections", type=int, default=None, help="concurrent connections (default 2 × workers)"
    )
    parser.add_argument(
        "--database",
        default=os.environ.get("PLANNER_DATABASE_URL"),
        help="SQLAlchemy URL (default: PLANNER_DATABASE_URL, else a temp SQLite file)",
    )
    parser.add_argument(
        "--read-plans", type=int, default=20, help="plans whose feed and JSON are read (20)"
    )
    parser.add_argument(
        "--check-in-plans",
        type=int,
        default=100,
        help="plans to check in on, ~28 sessions each, each reported once (100)",
    )
    parser.add_argument("--repeat", type=int, default=300, help="in-process samples (default 300)")
    parser.add_argument(
        "--rss-plans", type=int, default=10_000, help="plans for the RSS check (default 10000)"
    )
    parser.add_argument("--no-http", action="store_true", help="skip the HTTP part")
    parser.add_argument("--no-local", action="store_true", help="skip the in-process timings")
    parser.add_argument("--no-rss", action="store_true", help="skip the RSS check")
    parser.add_argument("--no-install", action="store_true", help="never apt-get install wrk")
    parser.add_argument(
        "--python-load", action="store_true", help="use the Python load generator, not wrk"
    )
    parser.add_argument(
        "--reference-exporters",
        action="store_true",
        help="serve with the icalendar/marshmallow exporters (the 'before' numbers)",
    )
    args = parser.parse_args(argv)
    args.connections = args.connections or max(2 * args.workers, 2)
    return args


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["_rss"]:
        print(json.dumps(rss_child([int(n) for n in argv[2:]], argv[1])))
        return 0
    if argv[:1] == ["_serve_reference"]:
        _serve_reference(argv[1:])
        return 0
    args = parse_args(argv)
    # A TERM (or Ctrl-C) still runs the finally below, which stops both servers.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    workdir = Path(tempfile.mkdtemp(prefix="stride-back-bench-"))
    args.database_label = "PLANNER_DATABASE_URL" if args.database else "temp SQLite"
    database_url = args.database or f"sqlite:///{workdir / 'bench.sqlite3'}"
    say: Callable[[str], None] = lambda text: print(f"  … {text}", flush=True)  # noqa: E731

    load_name, floors, results = None, None, None
    servers: list[Server] = []
    try:
        if not args.no_http:
            wrk = None if args.python_load else find_wrk(install=not args.no_install)
            load: Wrk | PythonLoad = (
                Wrk(wrk, workdir, args.connections, threads=1)
                if wrk
                else PythonLoad(args.connections)
            )
            load_name = load.name
            if wrk is None and not args.python_load:
                load_name += " (wrk could not be installed)"
                print("NOTE: wrk is not available; using the in-Python load generator.")
            env = {**os.environ, "PLANNER_DATABASE_URL": database_url}
            bin_dir = Path(sys.executable).parent
            planner_command = (
                [sys.executable, "-m", "planner.bench", "_serve_reference"]
                if args.reference_exporters
                else [str(bin_dir / "planner"), "serve"]
            )
            planner = Server(
                "planner serve",
                [*planner_command, "--workers", str(args.workers)],
                env,
                workdir / "planner.log",
            )
            floor = Server(
                "floor",
                [sys.executable, "-m", "planner.bench_floor", "--workers", str(args.workers)],
                env,
                workdir / "floor.log",
            )
            servers = [planner, floor]
            for server in servers:
                server.start()
            for server in servers:
                server.wait_ready()
            created = subprocess.run(
                [str(bin_dir / "planner"), "keys", "create", "bench", "--org", "bench"],
                env=env,
                capture_output=True,
                text=True,
                check=True,
                timeout=60,
            )
            key = created.stdout.strip().splitlines()[-1]
            say(f"servers up (planner :{planner.port}, floor :{floor.port}); creating plans")
            fixtures = prepare(
                planner.port, key, read_plans=args.read_plans, check_in_plans=args.check_in_plans
            )
            say(f"{len(fixtures.check_ins)} check-ins available; driving with {load.name}")
            floors, results = drive(
                load,
                floor,
                planner,
                fixtures,
                rounds=args.rounds,
                seconds=args.duration,
                progress=say,
            )
    finally:
        for server in servers:
            server.stop()

    local = None
    if not args.no_local:
        say("in-process timings")
        local = in_process(args.repeat)
    rss = None
    if not args.no_rss:
        counts = sorted({min(100, args.rss_plans), args.rss_plans})
        say(f"RSS: creating {args.rss_plans} plans in a child process (about a minute or two)")
        rss = measure_rss(counts, workdir)
    print()
    print("\n".join(report(args, load_name, floors, results, local, rss)))
    shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
