"""Load generators: ``wrk`` driven by a generated Lua script, parsed from its text
output, and a threaded Python stand-in for machines without ``wrk``."""

from __future__ import annotations

import http.client
import re
import shutil
import subprocess
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from bench import HOST


@dataclass(frozen=True)
class Call:
    """One request as a load generator sends it (the body already encoded as text)."""

    method: str
    path: str
    headers: dict[str, str] = field(default_factory=dict)
    body: str | None = None


@dataclass
class Run:
    """What one timed run of a load generator against one port gave."""

    rps: float
    p50_ms: float
    p99_ms: float
    requests: int
    errors: int  # non-2xx/3xx answers and socket errors


class Load(Protocol):
    """What :func:`bench.http.drive` needs of a load generator."""

    name: str

    def run(self, port: int, calls: Sequence[Call], seconds: float) -> Run: ...


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


def _search(pattern: str, output: str) -> str:
    match = re.search(pattern, output)
    if match is None:
        raise ValueError(f"wrk's output has no {pattern!r}:\n{output}")
    return match.group(1)


def parse_wrk(output: str) -> Run:
    """Rate, median and 99th-percentile latency, and the errors that count, from
    ``wrk --latency``'s text."""
    rps = float(_search(r"Requests/sec:\s+([\d.]+)", output))
    p50 = _duration_ms(_search(r"\s50%\s+(\S+)", output))
    p99 = _duration_ms(_search(r"\s99%\s+(\S+)", output))
    total = int(_search(r"(\d+) requests in", output))
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
    """``wrk`` on loopback, one run per call, its script in ``workdir``."""

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


#: Printed when wrk is not on PATH; installing it is scripts/bench's job, not Python's.
WRK_MISSING = (
    "NOTE: wrk is not on PATH, so the in-Python load generator drives the servers (lower\n"
    "absolute numbers, comparable ratios). scripts/bench installs wrk from Debian when run\n"
    "as root without --no-install; scripts/bench-deps does only that."
)


def find_wrk() -> str | None:
    """wrk from ``PATH``, or None: this never installs anything."""
    return shutil.which("wrk")
