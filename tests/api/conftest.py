"""Fixtures for API tests: an app on a real database (a SQLite file, and in a second run,
``[postgresql]``, a PostgreSQL database: ``tests.pg``), keys, and a spec checker."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from planner.store import Store
from planner.web import create_app
from tests.api.contract import Contract
from tests.builders import shipped_catalog
from tests.clock import Clock
from tests.pg import SQLITE, postgres_database

EXAMPLE_PLAN: dict[str, Any] = {
    "diagnosis_date": "2026-11-20",
    "start_date": "2026-11-21",
    "timezone": "America/New_York",
    "athlete": {"reference": "clinic-1234", "name": "A. Runner"},
    "injury": {
        "site": "femoral_neck",
        "type": "compression",
        "laterality": "left",
        "mri_grade": 3,
        "fracture_line": True,
        "fracture_line_pct": 20,
        "displaced": False,
    },
    "risk_factors": ["female", "prior_bone_stress_injury"],
    "schedule": {"run_days": ["MO", "WE", "FR"], "session_time": "07:00"},
}


@pytest.fixture
def database_url(
    database_kind: str, tmp_path: Path, request: pytest.FixtureRequest
) -> Iterator[str]:
    """A new SQLite file, or a new PostgreSQL database already at the newest schema (the
    app's own upgrade then has nothing to do)."""
    if database_kind == SQLITE:
        yield f"sqlite:///{tmp_path / 'planner.sqlite3'}"
        return
    with postgres_database(request, migrated=True) as url:
        yield url


@pytest.fixture
def app(database_url: str) -> Iterator[Flask]:
    app = create_app({"TESTING": True, "DATABASE_URL": database_url}, catalog=shipped_catalog())
    yield app
    app.extensions["planner"]["store"].dispose()


@pytest.fixture
def store(app: Flask) -> Store:
    return app.extensions["planner"]["store"]


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.fixture
def auth(store: Store) -> dict[str, str]:
    """Headers of a key in organisation ``clinic-a``."""
    _, secret = store.create_key("tests", "clinic-a")
    return {"Authorization": f"Bearer {secret}"}


@pytest.fixture
def other_auth(store: Store) -> dict[str, str]:
    """Headers of a key in another organisation."""
    _, secret = store.create_key("others", "clinic-b")
    return {"Authorization": f"Bearer {secret}"}


@pytest.fixture(scope="session")
def contract() -> Contract:
    return Contract.load()


@pytest.fixture
def clock(app: Flask) -> Clock:
    """The service's clock, set to the day after the example plan's diagnosis."""
    clock = Clock(datetime(2026, 11, 21, 9, tzinfo=UTC))
    app.extensions["planner"]["planner"].clock = clock
    return clock
