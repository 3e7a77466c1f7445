"""mypy ``--strict`` over the pure core, the exporters and the services, in the README's
test command.

They are the code every plan goes through and the easiest to keep exactly typed (no Flask
views, no ORM models); a type error there is a bug that a test may not reach.
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
STRICT_PACKAGES = ("planner/domain", "planner/export", "planner/service", "planner/links.py")


@pytest.mark.slow
def test_the_core_the_exporters_and_the_services_pass_mypy_strict() -> None:
    if importlib.util.find_spec("mypy") is None:
        pytest.fail("mypy is a dev dependency: install the project with its [dev] extra")
    result = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", *STRICT_PACKAGES],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
