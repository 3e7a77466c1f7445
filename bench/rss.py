"""Worker memory: create many plans through the service layer in a child process (a
fresh interpreter, as a worker is) and report its peak RSS after each count.

    python -m bench.rss sqlite:///…/rss.sqlite3 100 10000      (from the repository root)
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import time
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bench import REPO, child_env
from bench.plans import DAYS_SINCE_DIAGNOSIS, plan_payload


def _rss_now_kb() -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def rss_child(counts: Sequence[int], database_url: str) -> dict[str, Any]:
    """Runs in the child: create plans and note peak (and current) RSS after each count."""
    from planner.catalog import load_catalog
    from planner.schemas.api import PlanCreateSchema
    from planner.service import Planner
    from planner.store import Store

    store = Store(database_url)
    store.upgrade()
    planner = Planner(catalog=load_catalog(), store=store)
    today = datetime.now(UTC).date()
    # as the API hands it over: validated and loaded by the request schema
    payload = PlanCreateSchema().load(plan_payload(today - timedelta(days=DAYS_SINCE_DIAGNOSIS)))
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
    """Run :func:`rss_child` in a fresh interpreter; always on SQLite, since it is a
    worker's own memory that is measured, not a database server's."""
    url = f"sqlite:///{workdir / 'rss.sqlite3'}"
    result = subprocess.run(
        [sys.executable, "-m", "bench.rss", url, *map(str, counts)],
        cwd=REPO,
        env=child_env(os.environ),
        capture_output=True,
        text=True,
        timeout=3600,
    )
    if result.returncode != 0:
        raise RuntimeError(f"the RSS child failed:\n{result.stderr[-3000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def main(argv: Sequence[str] | None = None) -> int:
    url, *counts = list(sys.argv[1:] if argv is None else argv)
    print(json.dumps(rss_child([int(n) for n in counts], url)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
