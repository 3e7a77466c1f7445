"""Suite-wide settings.

``tests.pg`` runs the store and API suites on SQLite and on a throwaway PostgreSQL server
(see its docstring).

Under CI the property tests run derandomized (the same examples every run), so a red CI
always points at a change, never at a rare draw; locally they keep exploring new inputs.
"""

from __future__ import annotations

import os

from hypothesis import settings

pytest_plugins = ("tests.pg",)

settings.register_profile("ci", derandomize=True, database=None, print_blob=True)
settings.register_profile("dev", print_blob=True)
settings.load_profile("ci" if os.environ.get("CI") else "dev")
