"""``scripts/bench``: what a request and a plan cost, as ratios to a bare-Flask floor.

It starts ``planner serve --workers N`` on a loopback port (database:
``PLANNER_DATABASE_URL``, else a fresh SQLite file in a temp directory) and, under
the same gunicorn configuration, ``bench.floor`` — a bare Flask app whose
``GET /healthz`` answers a JSON hello. It creates a key and some plans (diagnosed
in the past, so sessions exist to check in), then drives both servers from ``wrk``
in interleaved rounds — floor, endpoint, floor, endpoint … — and reports per
endpoint the median requests/s and p50/p99 latency, and the median of the ratios to
the floor run just before it (:mod:`bench.http`, :mod:`bench.load`). In-process it
times building a plan and writing its JSON, writing a 100-session iCalendar, and the
least a plan POST must render, each against the reference exporters
(:mod:`bench.local`), and in a child process it creates 10,000 plans through the
service layer on SQLite and compares its peak RSS with that after 100
(:mod:`bench.rss`). Everything stays on 127.0.0.1, every run is bounded, and the
servers are stopped at the end. :mod:`bench.report` writes the table.

The bench lives beside the package, not in it: it is a development tool, never
shipped in the wheel. ``wrk`` is looked up on ``PATH`` only (``scripts/bench``
installs it from Debian first when it can); without it a small threaded Python load
generator stands in and the report says so — its absolute numbers are lower, its
ratios still comparable.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

HOST = "127.0.0.1"  # loopback only, never anything else

#: The repository root: where ``python -m bench.…`` finds this package.
REPO = Path(__file__).resolve().parents[1]


def child_env(env: Mapping[str, str]) -> dict[str, str]:
    """``env`` for a ``python -m bench.…`` child: the repository root first on its
    ``PYTHONPATH``, since the bench is not installed with the package."""
    path = [str(REPO), *filter(None, env.get("PYTHONPATH", "").split(os.pathsep))]
    return {**env, "PYTHONPATH": os.pathsep.join(path)}
