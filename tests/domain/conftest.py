"""Fixtures shared by the domain tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from planner.catalog import Catalog, builtin_protocols_dir
from tests.builders import shipped_catalog


@pytest.fixture
def catalog() -> Catalog:
    """The shipped protocol catalog."""
    return shipped_catalog()


@pytest.fixture
def protocols_dir() -> Path:
    """The directory the shipped protocol files are read from."""
    return builtin_protocols_dir()
