"""``python -m bench`` (what ``scripts/bench`` runs from the repository root): the
options, then the HTTP half, the in-process timings and the RSS check, then the report."""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

from bench.http import Measured, Server, create_key, drive, prepare, servers
from bench.load import WRK_MISSING, Load, PythonLoad, Wrk, find_wrk
from bench.report import report


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
    parser.add_argument(
        "--no-install",
        action="store_true",
        help="scripts/bench: never install wrk (this program only looks for it on PATH)",
    )
    parser.add_argument(
        "--python-load", action="store_true", help="use the Python load generator, not wrk"
    )
    parser.add_argument(
        "--reference-exporters",
        action="store_true",
        help="serve with PLANNER_EXPORTERS=reference: marshmallow + stdlib json and "
        "icalendar (the 'before' numbers)",
    )
    args = parser.parse_args(argv)
    args.connections = args.connections or max(2 * args.workers, 2)
    args.database_label = "PLANNER_DATABASE_URL" if args.database else "temp SQLite"
    return args


def pick_load(args: argparse.Namespace, workdir: Path) -> tuple[Load, str]:
    """wrk when it is on PATH (and not declined), else the Python threads, named so."""
    wrk = None if args.python_load else find_wrk()
    if wrk is not None:
        return Wrk(wrk, workdir, args.connections, threads=1), "wrk"
    if args.python_load:
        return PythonLoad(args.connections), PythonLoad.name
    print(WRK_MISSING, flush=True)
    return PythonLoad(args.connections), f"{PythonLoad.name} (wrk not found)"


def say(text: str) -> None:
    print(f"  … {text}", flush=True)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    # A TERM (or Ctrl-C) still runs the finally below, which stops both servers.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    workdir = Path(tempfile.mkdtemp(prefix="stride-back-bench-"))
    database_url = args.database or f"sqlite:///{workdir / 'bench.sqlite3'}"

    load_name: str | None = None
    floors: Measured | None = None
    results: dict[str, Measured] | None = None
    started: list[Server] = []
    try:
        if not args.no_http:
            load, load_name = pick_load(args, workdir)
            planner, floor = servers(
                workers=args.workers,
                database_url=database_url,
                reference_exporters=args.reference_exporters,
                workdir=workdir,
            )
            for server in (planner, floor):
                server.start()
                started.append(server)
            for server in started:
                server.wait_ready()
            key = create_key(planner.env)
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
        for server in started:
            server.stop()

    local = None
    if not args.no_local:
        from bench.local import in_process

        say("in-process timings")
        local = in_process(args.repeat)
    rss = None
    if not args.no_rss:
        from bench.rss import measure_rss

        counts = sorted({min(100, args.rss_plans), args.rss_plans})
        say(f"RSS: creating {args.rss_plans} plans in a child process (about a minute or two)")
        rss = measure_rss(counts, workdir)
    print()
    print("\n".join(report(args, load_name, floors, results, local, rss)))
    shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
