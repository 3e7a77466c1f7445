"""Defaults for the Flask app; every key can be overridden by a ``PLANNER_<KEY>``
environment variable (JSON-decoded) or by the mapping given to ``create_app``."""

from __future__ import annotations

from planner import __version__

DEFAULTS: dict[str, object] = {
    # Storage: None means PLANNER_DATABASE_URL, else SQLite under DATA_DIR.
    "DATABASE_URL": None,
    "DATA_DIR": "instance",
    # Connections each process's pool keeps open; None: SQLAlchemy's default (5).
    "DATABASE_POOL_SIZE": None,
    # Create/upgrade the schema when the app starts (``planner serve`` does it once
    # in the master process instead, before forking workers).
    "UPGRADE_ON_START": True,
    # Extra directories of protocol files (a clinic's own), validated at start-up.
    "PROTOCOLS_DIRS": [],
    # Absolute base of feed, webcal and FHIR URLs (behind a proxy); None: the request's host.
    "PUBLIC_BASE_URL": None,
    # Host headers answered where a URL is built from the request (pages, feed links,
    # FHIR); others get 400. None: localhost, the address served on and the host of
    # PUBLIC_BASE_URL (a list here replaces that default).
    "TRUSTED_HOSTS": None,
    # The address `planner serve` listens on (set by it).
    "BIND_HOST": None,
    # Webhooks: receivers on private/loopback addresses are refused unless this is true.
    "WEBHOOKS_ALLOW_PRIVATE": False,
    # Deliver webhooks from a thread of each `planner serve` worker; None: only on SQLite.
    "WEBHOOKS_IN_PROCESS": None,
    # Which exporters render each revision: "fast" (the default) or "reference" (the
    # marshmallow and icalendar renderers the fast ones are checked against: slower, the
    # same bytes; the benchmark's "before").
    "EXPORTERS": "fast",
    # Requests larger than this are refused with 413 before they are parsed.
    "MAX_CONTENT_LENGTH": 64 * 1024,
    "JSON_SORT_KEYS": False,
    # OpenAPI (flask-smorest)
    "API_TITLE": "stride-back return-to-run planner",
    "API_VERSION": __version__,
    "OPENAPI_VERSION": "3.1.0",
    "OPENAPI_URL_PREFIX": "/",
    "OPENAPI_JSON_PATH": "openapi.json",
    # Every operation needs a bearer key unless it says otherwise (/healthz does).
    "API_SPEC_OPTIONS": {"security": [{"bearerAuth": []}]},
}
