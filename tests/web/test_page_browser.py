"""The runner's page in a real browser: headless Chromium at phone size, driven by Playwright.

A real ``planner serve`` process (gunicorn, SQLite under tmp), a key from ``planner keys
create`` and a plan made over HTTP, then the page as a runner's phone shows it: the
timeline, the four ways to subscribe, no sideways scrolling at 375 px, a visible focus
ring on every stop of the keyboard path, a working copy button under the strict CSP,
and no serious or critical axe-core findings.

Needs Debian's ``chromium``, ``axe-core`` in ``.cache/axe`` and Playwright for Python
(``scripts/browser-deps`` installs all three). Without them the tests skip, except in
CI (``CI`` set), where a missing browser is a failure, not a silent pass.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import pytest

from tests.ci import missing

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
CHROMIUM = Path("/usr/bin/chromium")
AXE = REPO / ".cache" / "axe" / "node_modules" / "axe-core" / "axe.min.js"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
PHONE = {"width": 375, "height": 812}
#: WCAG 2.1 A and AA (contrast, names, landmarks …) plus axe's best practices.
AXE_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "best-practice"]
#: Runs ``planner serve`` with the page registered, for as long as planner.web does not
#: register it itself (then the real ``python -m planner serve`` is used).
SERVE_WITH_PAGE = """
import sys
import planner.web as web
from planner.web import page
_create_app = web.create_app
def create_app(*args, **kwargs):
    app = _create_app(*args, **kwargs)
    if "page" not in app.blueprints:
        app.register_blueprint(page.blp)
    return app
web.create_app = create_app
from planner.cli import main
main(prog_name="planner")
"""


def _unavailable(reason: str) -> NoReturn:
    missing(reason, install="scripts/browser-deps", tests="browser tests")


@pytest.fixture(scope="module")
def axe_script() -> Path:
    if not CHROMIUM.exists():
        _unavailable(f"Chromium is not installed at {CHROMIUM}")
    if not AXE.exists():
        _unavailable(f"axe-core is not installed at {AXE.relative_to(REPO)}")
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        _unavailable("Playwright for Python is not installed")
    return AXE


# ----------------------------------------------------------------------------- the server


@dataclass
class Server:
    base: str
    env: dict[str, str]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _page_is_registered(data_dir: Path) -> bool:
    from planner.web import create_app

    app = create_app({"DATABASE_URL": f"sqlite:///{data_dir / 'probe.sqlite3'}"})
    app.extensions["planner"]["store"].dispose()
    return "page" in app.blueprints


def _wait_until_up(base: str, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"planner serve exited early:\n{log.read_text()}")
        try:
            with urllib.request.urlopen(base + "/healthz", timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.2)
    pytest.fail(f"planner serve did not answer in 30 s:\n{log.read_text()}")


@pytest.fixture(scope="module")
def server(axe_script: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A real ``planner serve`` on a free loopback port, stopped after the module."""
    data_dir = tmp_path_factory.mktemp("planner-data")
    port = _free_port()
    env = {**os.environ, "PLANNER_DATA_DIR": str(data_dir)}
    env.pop("PLANNER_DATABASE_URL", None)
    serve = ["serve", "--port", str(port), "--workers", "1"]
    if _page_is_registered(data_dir):
        command = [sys.executable, "-m", "planner", *serve]
    else:
        command = [sys.executable, "-c", SERVE_WITH_PAGE, *serve]
    log = data_dir / "serve.log"
    with log.open("wb") as out:
        process = subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT, cwd=REPO)
    base = f"http://127.0.0.1:{port}"
    try:
        _wait_until_up(base, process, log)
        yield Server(base=base, env=env)
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture(scope="module")
def plan(server: Server) -> dict[str, Any]:
    """A plan made over HTTP with a key from ``planner keys create``; today is in phase 2."""
    created = subprocess.run(
        [sys.executable, "-m", "planner", "keys", "create", "browser-test", "--org", "clinic"],
        env=server.env,
        capture_output=True,
        text=True,
        check=True,
        cwd=REPO,
    )
    key = created.stdout.strip().splitlines()[-1]
    diagnosis = (datetime.now(UTC) - timedelta(days=48)).date()
    body = {
        "diagnosis_date": diagnosis.isoformat(),
        "timezone": "Europe/London",
        "injury": {"site": "femoral_neck", "type": "compression", "fracture_line_pct": 20},
        "risk_factors": ["female", "prior_bone_stress_injury"],
        "schedule": {"run_days": ["MO", "WE", "FR"], "session_time": "07:00"},
    }
    request = urllib.request.Request(
        server.base + "/v1/plans",
        data=json.dumps(body).encode(),
        headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.status == 201
        return json.load(response)


# ----------------------------------------------------------------------------- the browser


@pytest.fixture(scope="module")
def browser(axe_script: Path) -> Iterator[Browser]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True
        )
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture
def phone(browser: Browser, server: Server) -> Iterator[Page]:
    """A phone-sized page with the CSP enforced and clipboard access for the copy button."""
    context = browser.new_context(viewport=PHONE, is_mobile=True, has_touch=True)
    context.grant_permissions(["clipboard-read", "clipboard-write"], origin=server.base)
    page = context.new_page()
    try:
        yield page
    finally:
        context.close()


FOCUS_STYLE = """() => {
  const el = document.activeElement;
  if (!el || el === document.body) return null;
  const style = getComputedStyle(el);
  return {
    tag: el.tagName.toLowerCase(),
    id: el.id,
    text: (el.innerText || el.value || "").trim().slice(0, 60),
    outline: style.outlineStyle !== "none" ? parseFloat(style.outlineWidth) : 0,
    shadow: style.boxShadow !== "none",
  };
}"""


def test_page_on_a_phone(phone: Page, server: Server, plan: dict[str, Any], tmp_path: Path) -> None:
    violations: list[str] = []
    errors: list[str] = []
    phone.on(
        "console",
        lambda m: violations.append(m.text) if "Content Security Policy" in m.text else None,
    )
    phone.on("pageerror", lambda e: errors.append(str(e)))

    response = phone.goto(server.base + plan["links"]["page"], wait_until="load")

    assert response is not None and response.status == 200
    assert "default-src 'self'" in response.headers["content-security-policy"]
    phone.screenshot(path=str(tmp_path / "page-375.png"), full_page=True)
    chart = phone.locator("svg[role=img]")
    assert chart.is_visible()
    assert chart.locator("rect.bar").count() == len(plan["phases"])
    assert phone.locator("g.today line.today__line").count() == 1
    box = chart.bounding_box()
    assert box is not None and 0 < box["width"] <= PHONE["width"]

    feed = server.base + plan["links"]["feed"]
    webcal = phone.get_by_role("link", name="Apple Calendar or Outlook")
    google = phone.get_by_role("link", name="Google Calendar")
    https = phone.get_by_role("link", name="Open the calendar address")
    download = phone.get_by_role("link", name="Download a one-off .ics file")
    assert webcal.get_attribute("href") == "webcal://" + feed.split("://", 1)[1]
    assert (google.get_attribute("href") or "").startswith("https://calendar.google.com/")
    assert https.get_attribute("href") == feed
    assert download.get_attribute("href") == feed + "?download=1"
    for control in (webcal, google, https, download):
        assert control.is_visible()

    # Keyboard: every stop of the Tab path shows a focus ring; the subscribe controls are on it.
    stops: list[dict[str, Any]] = []
    for _ in range(30):
        phone.keyboard.press("Tab")
        focused = phone.evaluate(FOCUS_STYLE)
        if focused is None or (stops and focused == stops[0]):
            break
        stops.append(focused)
    assert len(stops) >= 6
    unmarked = [s for s in stops if s["outline"] < 2 and not s["shadow"]]
    assert unmarked == [], f"no visible focus on {unmarked}"
    reached = {s["id"] for s in stops}
    assert {
        "subscribe-webcal",
        "subscribe-google",
        "feed-url",
        "subscribe-https",
        "download-ics",
    } <= reached

    # page.js ran (loaded from the app under the CSP) and the copy button works.
    copy = phone.get_by_role("button", name="Copy")
    assert copy.is_visible()
    copy.click()
    # The clipboard write is asynchronous: wait (no eval, which the CSP forbids) for the
    # status it sets.
    from playwright.sync_api import expect

    expect(phone.locator("#copy-status")).to_have_text("Copied.", timeout=5000)
    assert phone.evaluate("navigator.clipboard.readText()") == feed

    scroll_width = phone.evaluate("document.documentElement.scrollWidth")
    assert scroll_width <= PHONE["width"], f"horizontal scroll: {scroll_width}px wide"

    assert violations == [], violations
    assert errors == [], errors


def _serious_axe_violations(page: Page, axe: Path) -> list[str]:
    page.add_script_tag(path=str(axe))
    results = page.evaluate(
        "async (tags) => await axe.run(document, {runOnly: {type: 'tag', values: tags}})",
        AXE_TAGS,
    )
    return [
        f"{v['id']} ({v['impact']}): {v['help']} — {[n['target'] for n in v['nodes']]}"
        for v in results["violations"]
        if v["impact"] in ("serious", "critical")
    ]


def test_axe_finds_no_serious_problems(
    browser: Browser, server: Server, plan: dict[str, Any], axe_script: Path
) -> None:
    # axe is injected as an inline script, which the page's CSP rightly refuses: this
    # context alone bypasses it (the other test checks the page under its CSP).
    context = browser.new_context(viewport=PHONE, is_mobile=True, bypass_csp=True)
    try:
        page = context.new_page()
        for path, status in ((plan["links"]["page"], 200), ("/p/" + "x" * 43, 404)):
            response = page.goto(server.base + path, wait_until="load")
            assert response is not None and response.status == status
            assert _serious_axe_violations(page, axe_script) == [], path
    finally:
        context.close()
