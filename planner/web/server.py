"""Run the app under gunicorn, configured in code so ``planner serve`` needs no files."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import unquote

from gunicorn.app.base import BaseApplication
from gunicorn.glogging import Logger

from planner import links
from planner.web import create_app
from planner.web.webhooks import start_background_delivery

#: Feed and page URLs carry a capability token: it must never reach a log file.
_TOKEN_PATH = re.compile(
    rf"/+({re.escape(links.FEEDS.strip('/'))}|{re.escape(links.PAGES.strip('/'))})/+[^/?#\s]+"
)


def redact(text: str) -> str:
    """``/feeds/<token>.ics`` → ``/feeds/<redacted>``, also when the path was sent
    percent-encoded (``/%66eeds/…``, ``/feeds%2F…``): the server decodes it before routing,
    so the log is redacted on the decoded text."""
    return _TOKEN_PATH.sub(lambda m: f"/{m.group(1)}/<redacted>", unquote(text))


class RedactingLogger(Logger):  # type: ignore[misc]
    """gunicorn's access log without feed tokens, in any field a format may use
    (request line, path, referer, raw environ and header atoms)."""

    def atoms(self, resp, req, environ, request_time):  # type: ignore[no-untyped-def]
        atoms = super().atoms(resp, req, environ, request_time)
        return {k: redact(v) if isinstance(v, str) else v for k, v in atoms.items()}


class PlannerServer(BaseApplication):  # type: ignore[misc]
    """Each worker builds its own app (and database pool) after the fork."""

    def __init__(self, options: dict[str, Any], *, bind_host: str | None = None) -> None:
        self.options = options
        self.bind_host = bind_host
        super().__init__()

    def load_config(self) -> None:
        for key, value in self.options.items():
            self.cfg.set(key, value)
        # gunicorn ≥ 25.1 opens a control socket at one fixed path per user, which every
        # instance on a host would share; `planner serve` is managed by signals, not
        # `gunicornc`, so there is none (several instances run side by side).
        if "control_socket_disable" in self.cfg.settings:
            self.cfg.set("control_socket_disable", True)

    def load(self):  # type: ignore[no-untyped-def]
        # The schema was upgraded once by the master; workers must not race to do it.
        app = create_app({"UPGRADE_ON_START": False, "BIND_HOST": self.bind_host})
        # In each worker, after the fork (gunicorn loads the app there): never in the master.
        start_background_delivery(app)
        return app


def run(*, host: str, port: int, workers: int, access_log: bool) -> None:
    PlannerServer(
        {
            "bind": f"{host}:{port}",
            "workers": workers,
            "worker_class": "sync",
            "timeout": 30,
            "graceful_timeout": 10,
            "accesslog": "-" if access_log else None,
            "errorlog": "-",
            "loglevel": "info",
            "proc_name": "planner",
            "logger_class": RedactingLogger,
        },
        bind_host=host,
    ).run()
