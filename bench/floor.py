"""The benchmark's floor: a bare Flask app with one JSON "hello" endpoint, served by
exactly the gunicorn configuration ``planner serve`` uses (``planner.web.server.run``
with its options, worker count and class; only the loaded app differs), so
``scripts/bench`` can report every endpoint as a ratio to what this server and this
machine can do at best.

    python -m bench.floor --port 8001 --workers 2      (from the repository root)
"""

from __future__ import annotations

import argparse
from typing import Any

from flask import Flask


def create_floor_app(_config: Any = None) -> Flask:
    """The least a Flask app can answer: no database, no auth, a constant body."""
    app = Flask(__name__)

    @app.get("/healthz")
    def hello() -> dict[str, str]:
        return {"status": "ok"}

    return app


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8001)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args(argv)

    from planner.web import server

    class FloorServer(server.PlannerServer):
        def load(self) -> Flask:
            return create_floor_app()

    # `planner serve`'s own run(): the same gunicorn options, only the app differs. This
    # process serves nothing else, so replacing the class here touches no planner server.
    server.PlannerServer = FloorServer  # type: ignore[misc]
    server.run(host=args.host, port=args.port, workers=args.workers, access_log=False)


if __name__ == "__main__":
    main()
