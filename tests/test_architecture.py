"""The layering the code promises, checked from its imports (``ast``; nothing is imported).

``web → service → {domain, store, export}``: the domain is pure (the standard library
only), the exporters and schemas know no Flask, the store knows no domain, and
the web app reaches the store only through the services. ``scripts/import-edges`` prints
every edge between the packages and fails when one runs back up.
"""

from __future__ import annotations

import subprocess
import sys
from importlib.machinery import SourceFileLoader
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "scripts" / "import-edges"
WEB_FRAMEWORKS = {"flask", "flask_smorest", "werkzeug", "webargs"}


def _load_script() -> ModuleType:
    loader = SourceFileLoader("import_edges", str(SCRIPT))
    module = ModuleType(loader.name)
    module.__file__ = str(SCRIPT)
    loader.exec_module(module)
    return module


import_edges = _load_script()


def imports_of(package: str) -> dict[str, set[str]]:
    """Module → the modules it imports, for every module under ``planner/<package>``."""
    folder = ROOT / "planner" / package
    return {
        import_edges.module_name(path): import_edges.imported_modules(path)
        for path in sorted(folder.rglob("*.py"))
        if "migrations" not in path.parts
    }


def offenders(package: str, allowed: object) -> dict[str, list[str]]:
    found = {}
    for module, imported in imports_of(package).items():
        bad = sorted(m for m in imported if not allowed(m))  # type: ignore[operator]
        if bad:
            found[module] = bad
    return found


def _top(module: str) -> str:
    return module.partition(".")[0]


def test_the_domain_imports_only_the_standard_library() -> None:
    def allowed(module: str) -> bool:
        if module == "planner.domain" or module.startswith("planner.domain."):
            return True
        return _top(module) in sys.stdlib_module_names

    assert offenders("domain", allowed) == {}


@pytest.mark.parametrize("package", ["export", "schemas"])
def test_exporters_and_schemas_import_no_web_framework(package: str) -> None:
    assert offenders(package, lambda m: _top(m) not in WEB_FRAMEWORKS) == {}


def test_the_store_imports_no_domain_and_no_web_framework() -> None:
    def allowed(module: str) -> bool:
        return _top(module) not in WEB_FRAMEWORKS and not module.startswith("planner.domain")

    assert offenders("store", allowed) == {}


def test_the_web_app_reaches_the_store_only_through_the_services() -> None:
    assert offenders("web", lambda m: not m.startswith("planner.store")) == {}


def test_the_services_import_no_web_framework() -> None:
    assert offenders("service", lambda m: _top(m) not in WEB_FRAMEWORKS) == {}


def test_no_import_edge_runs_back_up() -> None:
    found = import_edges.edges()
    assert ("planner.web", "planner.service") in found  # the script sees real edges
    assert import_edges.upward(found) == []


def test_the_edges_script_runs_as_the_readme_shows() -> None:
    result = subprocess.run(
        [sys.executable, str(SCRIPT)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "planner.service -> planner.store" in result.stdout
    assert result.stdout.strip().endswith("no edge runs back up")


def test_the_edges_script_fails_on_an_edge_that_runs_back_up(tmp_path: Path) -> None:
    """A check that cannot fail proves nothing: plant an upward import and see it caught."""
    package = tmp_path / "planner"
    (package / "domain").mkdir(parents=True)
    (package / "web").mkdir()
    (package / "__init__.py").write_text("")
    (package / "domain" / "__init__.py").write_text("from planner.web import app\n")
    (package / "web" / "__init__.py").write_text("app = None\n")
    found = import_edges.edges(tmp_path)
    assert import_edges.upward(found) == [("planner.domain", "planner.web")]
