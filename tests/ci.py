"""The suite's one rule for tests that need tools a machine may lack."""

from __future__ import annotations

import os
from typing import NoReturn

import pytest


def missing(what: str, *, install: str, tests: str) -> NoReturn:
    """Skip on a developer's machine; fail under ``CI``, which runs ``install`` first, so
    that a skip there can never pass for a green run of ``tests``."""
    message = f"{what} (run {install})"
    if os.environ.get("CI"):
        pytest.fail(f"{message}; CI must run the {tests}", pytrace=False)
    pytest.skip(message)
