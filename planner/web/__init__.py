"""The HTTP shell: ``create_app`` builds a Flask app around the catalog and the store.

Configuration, lowest precedence first: ``planner.web.config.DEFAULTS``, then
``PLANNER_*`` environment variables (JSON-decoded, e.g. ``PLANNER_DATABASE_URL``),
then the mapping passed in (tests).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from inspect import iscoroutinefunction
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from flask import Flask

from planner.catalog import Catalog, load_catalog, protocol_dirs
from planner.export import exporters_named
from planner.service import Planner, Store, open_store
from planner.web import (
    feeds,
    fhir,
    health,
    idempotency,
    page,
    plans,
    progress,
    protocols,
    webhooks,
)
from planner.web.api import Api
from planner.web.auth import BEARER_SCHEME
from planner.web.config import DEFAULTS
from planner.web.errors import register_error_handlers
from planner.web.fast_path import FastPath


class PlannerFlask(Flask):
    """Flask, minus a per-request cost: Flask asks ``inspect.iscoroutinefunction`` of
    every hook and view on every request (16 times for a plan GET, ~60 µs); the answer
    never changes for a function, so it is remembered per function (bounded by the
    number of functions the app has)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._is_coroutine: dict[Callable[..., Any], bool] = {}

    def ensure_sync(self, func: Callable[..., Any]) -> Callable[..., Any]:
        target = getattr(func, "__func__", func)  # a bound method: ask of its function
        is_coroutine = self._is_coroutine.get(target)
        if is_coroutine is None:
            is_coroutine = self._is_coroutine[target] = iscoroutinefunction(target)
        return self.async_to_sync(func) if is_coroutine else func


#: Names a client on this machine reaches the service by.
LOCAL_HOSTS = ("localhost", "127.0.0.1", "::1")
#: Bind addresses that name no host a client would send.
_ANY_ADDRESS = ("0.0.0.0", "::", "")


def trusted_hosts(config: Mapping[str, Any]) -> list[str]:
    """Which ``Host`` headers may build URLs: a reflected ``Host: evil.example`` would
    otherwise reach feed links and FHIR references (Werkzeug answers 400 to others)."""
    if config.get("TRUSTED_HOSTS") is not None:
        return list(config["TRUSTED_HOSTS"])
    hosts = list(LOCAL_HOSTS)
    bind = config.get("BIND_HOST")
    if bind and bind not in _ANY_ADDRESS:
        hosts.append(bind)
    if config.get("PUBLIC_BASE_URL"):
        public = urlsplit(config["PUBLIC_BASE_URL"]).hostname
        if public:
            hosts.append(public)
    return hosts


def create_app(
    config: Mapping[str, Any] | None = None,
    *,
    store: Store | None = None,
    catalog: Catalog | None = None,
) -> Flask:
    """Build the app. The catalog is validated here: a bad protocol file stops start-up.

    ``store`` and ``catalog``: already open and loaded ones to use instead (tests share one
    catalog; ``PROTOCOLS_DIRS`` is then the caller's to have applied).
    """
    app = PlannerFlask(__name__)
    app.config.from_mapping(DEFAULTS)
    app.config.from_prefixed_env("PLANNER")
    app.config.from_mapping(config or {})

    if store is None:
        store = open_store(
            app.config["DATABASE_URL"],
            Path(app.config["DATA_DIR"]),
            pool_size=app.config["DATABASE_POOL_SIZE"],
            upgrade=app.config["UPGRADE_ON_START"],
        )
    if catalog is None:
        catalog = load_catalog(protocol_dirs(app.config["PROTOCOLS_DIRS"]))
    planner = Planner(
        catalog=catalog,
        store=store,
        exporters=exporters_named(app.config["EXPORTERS"]),
        public_base_url=app.config["PUBLIC_BASE_URL"],
    )
    app.extensions["planner"] = {"store": store, "catalog": catalog, "planner": planner}

    app.config["TRUSTED_HOSTS"] = trusted_hosts(app.config)
    register_error_handlers(app)
    idempotency.init_app(app)
    api = Api(app)
    api.spec.components.security_scheme("bearerAuth", BEARER_SCHEME)
    for blueprint in (
        plans.blp,
        progress.blp,
        feeds.admin,
        webhooks.blp,
        protocols.blp,
        feeds.blp,
        page.blp,
        fhir.blp,
        health.blp,
    ):
        api.register_blueprint(blueprint)
    app.wsgi_app = FastPath(app.wsgi_app, planner)  # type: ignore[method-assign]
    return app
