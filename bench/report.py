"""The report: each figure against its target, as plain text lines (what the README's
"Performance" section quotes)."""

from __future__ import annotations

import argparse
import os
import sys
from datetime import UTC, datetime
from typing import Any

from bench.http import HTTP_TARGETS, Measured

BUILD_JSON_TARGET_US = 2000.0
ICS_TARGET_US = 8000.0
RSS_TARGET_MB = 50.0


def verdict(ok: bool) -> str:
    return "PASS" if ok else "MISS"


def write_ceiling(floor_rps: float, workers: int, write_us: float) -> float:
    """The best ratio to the floor a write could reach if it cost the floor's request
    plus ``write_us`` of worker time (each of ``workers`` serves ``floor_rps / workers``)."""
    floor_us = 1e6 * workers / floor_rps
    return floor_us / (floor_us + write_us)


def report(
    args: argparse.Namespace,
    load_name: str | None,
    floors: Measured | None,
    results: dict[str, Measured] | None,
    local: dict[str, float] | None,
    rss: dict[str, Any] | None,
) -> list[str]:
    """The lines of the report, for whichever parts ran (``None``: skipped)."""
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
            "(now = the fast exporters, JSON written by orjson; oracle = the reference",
            "exporters: marshmallow dump + stdlib json, icalendar)",
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
