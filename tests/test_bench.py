"""``scripts/bench``'s own logic: parsing wrk, ratios, the report (no timing asserted).

The bench is the repository's top-level ``bench`` package, never installed: it imports
here because the repository root is on ``sys.path``, as for ``tests`` itself."""

from __future__ import annotations

import argparse
import os
from datetime import UTC, datetime
from pathlib import Path

import pytest

from bench import REPO, http, load, local, report
from bench.http import Measured
from bench.load import Call, Run

WRK_OUTPUT = """\
Running 2s test @ http://127.0.0.1:40000
  1 threads and 4 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency   812.00us  120.00us   3.10ms   90.00%
    Req/Sec     4.60k   100.00     4.80k    70.00%
  Latency Distribution
     50%  800us
     75%  850us
     90%  900us
     99%    1.25ms
  9200 requests in 2.00s, 1.50MB read
  Socket errors: connect 1, read 7, write 2, timeout 3
  Non-2xx or 3xx responses: 4
Requests/sec:   4601.50
Transfer/sec:    750.00KB
"""


def test_parse_wrk_reads_rate_latencies_and_counts_errors_but_read_resets() -> None:
    run = load.parse_wrk(WRK_OUTPUT)
    assert run.rps == pytest.approx(4601.5)
    assert run.p50_ms == pytest.approx(0.8)
    assert run.p99_ms == pytest.approx(1.25)
    assert run.requests == 9200
    # gunicorn's sync workers close connections: read errors are not failures.
    assert run.errors == 4 + 1 + 2 + 3


@pytest.mark.parametrize(("text", "ms"), [("950us", 0.95), ("2.5ms", 2.5), ("1.2s", 1200.0)])
def test_wrk_durations_in_milliseconds(text: str, ms: float) -> None:
    assert load._duration_ms(text) == pytest.approx(ms)


def test_lua_script_escapes_bodies_and_headers() -> None:
    script = load.lua_script(
        [Call("POST", "/v1/plans", {"Authorization": 'Bearer "k"'}, '{"a": "b\\c"}\n')]
    )
    assert '["Authorization"] = "Bearer \\"k\\""' in script
    assert '"{\\"a\\": \\"b\\\\c\\"}\\n"' in script
    assert script.count("wrk.format") == 1


def _run(rps: float) -> Run:
    return Run(rps=rps, p50_ms=1.0, p99_ms=2.0, requests=int(rps), errors=0)


def test_ratio_is_the_median_of_per_round_ratios() -> None:
    measured = Measured(
        runs=[_run(100), _run(300), _run(50)], floors=[_run(1000), _run(1000), _run(100)]
    )
    assert measured.ratio == pytest.approx(0.3)  # median of 0.1, 0.3, 0.5
    assert measured.median("rps") == 100


def test_write_ceiling() -> None:
    # 2 workers at 4000 req/s: 500 µs of worker time per request; 1500 µs more → 0.25.
    assert report.write_ceiling(4000, 2, 1500) == pytest.approx(0.25)
    assert report.write_ceiling(4000, 2, 0) == pytest.approx(1.0)


def test_write_work_is_measured_on_the_plan_the_http_run_posts() -> None:
    from planner.catalog import load_catalog

    created = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
    work = local.write_work_us(load_catalog(), created, repeat=1)
    assert set(work) == {"post", "check_in"}
    assert all(us > 0 for us in work.values())


def test_report_judges_each_target_and_states_the_write_ceiling() -> None:
    args = argparse.Namespace(
        workers=2,
        connections=4,
        rounds=1,
        duration=2.0,
        database_label="temp SQLite",
        reference_exporters=False,
    )
    floors = Measured(runs=[_run(4000)])
    rates = {"feed_304": 3800, "feed_200": 2000, "plan_get": 2600, "plan_post": 400}
    results = {
        key: Measured(runs=[_run(rates.get(key, 1000))], floors=[_run(4000)])
        for _, key, _ in http.HTTP_TARGETS
    }
    local = {
        "build_json": 1500.0,
        "build_json_reference": 5000.0,
        "build": 1100.0,
        "build_json_stdlib": 2000.0,
        "build_json_timed": 2500.0,
        "ics_100": 9000.0,
        "ics_100_reference": 40000.0,
        "write_work_post": 1500.0,
        "write_work_check_in": 3500.0,
    }
    text = "\n".join(report.report(args, "wrk", floors, results, local, None))
    lines = {line.split("  ")[0]: line for line in text.splitlines()}
    assert lines["GET feed, If-None-Match (304)"].endswith("PASS")  # 0.95
    assert lines["GET feed (200)"].endswith("MISS")  # 0.50
    assert lines["GET /v1/plans/{id}"].endswith("PASS")  # 0.65
    assert lines["POST /v1/plans"].endswith("MISS")  # 0.10
    assert lines["POST …/check-ins"].endswith("PASS")  # 0.25
    assert lines["build + JSON, default plan"].endswith("PASS")
    assert lines["iCalendar, 100 timed sessions"].endswith("MISS")
    assert "0.25 × floor (plan POST) and 0.12 × floor (check-in)" in text


def test_reference_exporters_are_chosen_by_the_served_apps_setting(tmp_path: Path) -> None:
    for reference in (False, True):
        planner, floor = http.servers(
            workers=2,
            database_url="sqlite:///x.sqlite3",
            reference_exporters=reference,
            workdir=tmp_path,
        )
        # the ordinary `planner serve`, told which exporters to use (never patched)
        assert Path(planner.command[0]).name == "planner"
        assert planner.command[1:] == ["serve", "--workers", "2"]
        assert planner.env["PLANNER_EXPORTERS"] == ("reference" if reference else "fast")
        assert planner.env["PLANNER_DATABASE_URL"] == "sqlite:///x.sqlite3"
        # the floor is a `bench` module: it runs from the repository root
        assert floor.command[1:3] == ["-m", "bench.floor"]
        assert floor.cwd == REPO
        assert floor.env["PYTHONPATH"].split(os.pathsep)[0] == str(REPO)


def test_in_process_gives_every_figure_the_report_reads() -> None:
    figures = local.in_process(repeat=1)
    assert {
        "build_json",
        "build_json_reference",
        "build",
        "build_json_stdlib",
        "build_json_timed",
        "ics_100",
        "ics_100_reference",
        "write_work_post",
        "write_work_check_in",
    } <= set(figures)
    assert all(us > 0 for us in figures.values())


@pytest.mark.slow
def test_the_rss_child_finds_the_bench_and_reports_each_count(tmp_path: Path) -> None:
    from bench.rss import measure_rss

    measured = measure_rss([1, 3], tmp_path)
    assert [point["plans"] for point in measured["points"]] == [1, 3]
    assert all(point["peak_kb"] > 0 for point in measured["points"])
