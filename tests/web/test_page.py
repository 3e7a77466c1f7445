"""The runner's page ``/p/<token>`` through the Flask test client (fast, no browser).

What a runner relies on: the timeline and its "today" marker, the next session spelled
out in their local time, the four ways to subscribe, the pain rules and red flags, a
clear notice when the plan is stopped or cancelled — and what must never leak: the
diagnosis (unless the plan opted in), the page itself (no-store, no referrer, strict CSP)
and an old or "busy" token.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from flask import Flask
from flask.testing import FlaskClient

from planner.domain.model import RedFlag
from planner.export.to_ical import DIAGNOSIS_WORDS, names_diagnosis
from planner.web import create_app, page
from tests.builders import shipped_catalog
from tests.clock import Clock

BASE_URL = "https://plans.example"
#: A Friday in the graded-running phase of PLAN (see phase_dates below).
PLAN: dict[str, Any] = {
    "diagnosis_date": "2026-11-20",
    "timezone": "America/New_York",
    "athlete": {"reference": "clinic-1234", "name": "A. Runner"},
    "injury": {
        "site": "femoral_neck",
        "type": "compression",
        "laterality": "left",
        "fracture_line_pct": 20,
    },
    # Both raise alerts whose protocol wording names the diagnosis.
    "risk_factors": ["female", "prior_bone_stress_injury"],
    "schedule": {"run_days": ["MO", "WE", "FR"], "session_time": "07:00"},
}
SURGICAL_PLAN: dict[str, Any] = {
    "diagnosis_date": "2026-11-20",
    "timezone": "Europe/London",
    "injury": {"site": "femoral_neck", "type": "tension"},
}


# ----------------------------------------------------------------------------- HTML helper

VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "wbr"}


@dataclass
class Node:
    tag: str
    attrs: dict[str, str | None]
    children: list[Node] = field(default_factory=list)
    parent: Node | None = None

    @property
    def text(self) -> str:
        parts = [c if isinstance(c, str) else c.text for c in self.children]  # type: ignore[attr-defined]
        return re.sub(r"\s+", " ", "".join(parts)).strip()

    def all(self, tag: str | None = None, **attrs: str) -> list[Node]:
        """Descendants by tag and attribute values (``class_`` matches one class)."""
        found: list[Node] = []
        for child in self.children:
            if isinstance(child, str):
                continue
            if (tag is None or child.tag == tag) and _matches(child, attrs):
                found.append(child)
            found.extend(child.all(tag, **attrs))
        return found

    def one(self, tag: str | None = None, **attrs: str) -> Node:
        found = self.all(tag, **attrs)
        assert len(found) == 1, f"expected one <{tag} {attrs}>, found {len(found)}"
        return found[0]


def _matches(node: Node, attrs: dict[str, str]) -> bool:
    for name, value in attrs.items():
        if name == "class_":
            if value not in (node.attrs.get("class") or "").split():
                return False
        elif node.attrs.get(name) != value:
            return False
    return True


class _TreeBuilder(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.root = Node("#document", {})
        self.current = self.root

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        node = Node(tag, dict(attrs), parent=self.current)
        self.current.children.append(node)
        if tag not in VOID:
            self.current = node

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.current.children.append(Node(tag, dict(attrs), parent=self.current))

    def handle_endtag(self, tag: str) -> None:
        node: Node | None = self.current
        while node is not None and node.tag != tag:
            node = node.parent
        if node is not None and node.parent is not None:
            self.current = node.parent

    def handle_data(self, data: str) -> None:
        self.current.children.append(data)  # type: ignore[arg-type]


def parse(html: str) -> Node:
    builder = _TreeBuilder()
    builder.feed(html)
    builder.close()
    return builder.root


# ----------------------------------------------------------------------------- fixtures


@pytest.fixture
def app(tmp_path: Path) -> Iterator[Flask]:
    app = create_app(
        {
            "TESTING": True,
            "DATABASE_URL": f"sqlite:///{tmp_path / 'planner.sqlite3'}",
            "PUBLIC_BASE_URL": BASE_URL,
        },
        catalog=shipped_catalog(),
    )
    yield app
    app.extensions["planner"]["store"].dispose()


@pytest.fixture
def clock(app: Flask) -> Clock:
    clock = Clock(datetime(2026, 11, 20, 14, 0, tzinfo=UTC))  # the page never reads real time
    app.extensions["planner"]["planner"].clock = clock
    return clock


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.fixture
def auth(app: Flask) -> dict[str, str]:
    _, secret = app.extensions["planner"]["store"].create_key("tests", "clinic-a")
    return {"Authorization": f"Bearer {secret}"}


@pytest.fixture
def make_plan(
    client: FlaskClient, auth: dict[str, str], clock: Clock
) -> Callable[..., dict[str, Any]]:
    def make(body: dict[str, Any] = PLAN) -> dict[str, Any]:
        response = client.post("/v1/plans", json=body, headers=auth)
        assert response.status_code == 201, response.get_json()
        return response.get_json()

    return make


@pytest.fixture
def plan(make_plan: Callable[..., dict[str, Any]]) -> dict[str, Any]:
    return make_plan()


def get_page(client: FlaskClient, plan: dict[str, Any]) -> tuple[Any, Node]:
    response = client.get(plan["links"]["page"])
    return response, parse(response.get_data(as_text=True))


def token_of(plan: dict[str, Any]) -> str:
    return plan["links"]["page"].rsplit("/", 1)[1]


def visible_words(html: str, *tokens: str) -> str:
    """The page without its capability tokens (random text may contain any letters)."""
    for token in tokens:
        html = html.replace(token, "TOKEN")
    return html.lower()


def phase(plan: dict[str, Any], key: str) -> dict[str, Any]:
    return next(p for p in plan["phases"] if p["key"] == key)


def total_days(plan: dict[str, Any]) -> int:
    first = date.fromisoformat(plan["phases"][0]["start_date"])
    last = date.fromisoformat(plan["phases"][-1]["end_date"])
    return (last - first).days + 1


# ----------------------------------------------------------------------------- the page


def test_page_shows_a_proportional_accessible_timeline(
    client: FlaskClient, plan: dict[str, Any]
) -> None:
    response, doc = get_page(client, plan)

    assert response.status_code == 200
    assert response.mimetype == "text/html"
    svg = doc.one("svg", role="img")
    labelled_by = (svg.attrs["aria-labelledby"] or "").split()
    assert [doc.one(id=i).tag for i in labelled_by] == ["title", "desc"]
    assert "5 phases" in doc.one("desc").text
    bars = svg.all("rect", class_="bar")
    assert [b.attrs["data-phase"] for b in bars] == [p["key"] for p in plan["phases"]]
    total = total_days(plan)
    for bar, ph in zip(bars, plan["phases"], strict=True):
        days = (date.fromisoformat(ph["end_date"]) - date.fromisoformat(ph["start_date"])).days + 1
        expected = page.BAR_WIDTH * days / total
        assert float(bar.attrs["width"] or 0) + page.BAR_GAP == pytest.approx(expected, abs=0.02)
    # The text fallback lists every phase with its dates.
    items = doc.one("ol", class_="phases").all("li")
    assert len(items) == len(plan["phases"])
    assert "20 Nov – 31 Dec 2026 · 42 days" in items[0].text


@pytest.mark.parametrize(
    ("local_day", "hour", "days_in"),
    [
        ("2026-11-20", 8, 0),  # the first day: the left edge
        ("2027-01-01", 9, 42),  # the first day of phase 2: the left edge of its bar
        ("2026-12-31", 23, 41),  # 04:00 UTC on 1 January, still 31 December in New York
    ],
)
def test_today_marker_sits_on_today_in_the_plan_time_zone(
    client: FlaskClient, plan: dict[str, Any], clock: Clock, local_day: str, hour: int, days_in: int
) -> None:
    clock.local(local_day, hour)

    _, doc = get_page(client, plan)

    marker = doc.one("g", class_="today")
    assert marker.attrs["data-date"] == local_day
    line = marker.one("line", class_="today__line")
    expected = page.BAR_X + page.BAR_WIDTH * days_in / total_days(plan)
    assert float(line.attrs["x1"] or 0) == pytest.approx(expected, abs=0.01)
    assert line.attrs["x1"] == line.attrs["x2"]
    if days_in == 42:
        bar = doc.one("rect", **{"data-phase": "protected_weight_bearing"})
        assert bar.attrs["x"] == pytest.approx(line.attrs["x1"])
        assert "bar--current" in (bar.attrs["class"] or "")
        assert "is in phase 2 of 5" in doc.one("desc").text


def test_no_today_marker_before_the_plan_starts(
    client: FlaskClient, make_plan: Callable[..., dict[str, Any]], clock: Clock
) -> None:
    plan = make_plan({**PLAN, "start_date": "2026-12-01"})
    clock.local("2026-11-25")

    _, doc = get_page(client, plan)

    assert doc.all("g", class_="today") == []
    assert "The plan starts on Tuesday 1 December 2026." in doc.one("desc").text


def test_next_session_spells_out_its_intervals_in_local_time(
    client: FlaskClient, plan: dict[str, Any], clock: Clock
) -> None:
    first_run = plan["expected_return_to_run_date"]
    clock.local(first_run, 6)  # 06:00 in New York, before the session
    session = next(s for s in plan["sessions"] if s["date"] == first_run)
    assert session["start"].endswith("-05:00")  # 07:00 local is 12:00 UTC

    _, doc = get_page(client, plan)

    card = doc.one(id="next-session")
    day, time = card.all("time")
    assert day.attrs["datetime"] == first_run
    assert (time.text, time.attrs["datetime"]) == ("07:00", f"{first_run}T07:00-05:00")
    assert "Today" in card.text
    assert "07:00 (America/New_York time)" in card.text
    assert card.one("p", class_="card__steps").text == (
        "Walk 5 min, then run 1 min — repeat 5 times (30 min in all)."
    )
    assert "Run/walk" in card.text


def test_next_review_lists_what_the_clinician_checks(
    client: FlaskClient, plan: dict[str, Any], clock: Clock
) -> None:
    review = next(s for s in plan["sessions"] if s["kind"] == "review")
    assert [s["kind"] for s in plan["sessions"] if s["date"] == review["date"]] == ["review"]
    clock.local(review["date"], 8)

    _, doc = get_page(client, plan)

    card = doc.one(id="next-session")
    assert "Clinical review" in card.text
    assert card.one("h4").text == "What your clinician will check"
    assert [t.attrs["datetime"] for t in card.all("time")] == [review["date"]]
    checks = [li.text for li in card.one("ul", class_="checklist").all("li")]
    assert "No pain at rest" in checks
    assert "any time that day" in card.text


def test_this_week_lists_the_next_seven_days(
    client: FlaskClient, plan: dict[str, Any], clock: Clock
) -> None:
    today = date.fromisoformat(plan["expected_return_to_run_date"])
    clock.local(today.isoformat(), 5)
    expected = [
        s["date"]
        for s in plan["sessions"]
        if today <= date.fromisoformat(s["date"]) < today + timedelta(days=7)
    ]

    _, doc = get_page(client, plan)

    week = doc.one("ol", class_="week")
    assert [t.attrs["datetime"] for t in week.all("time", class_="week__day")] == expected
    assert len(expected) >= 3


def test_pain_rules_and_red_flags_are_on_the_page(
    client: FlaskClient, plan: dict[str, Any]
) -> None:
    _, doc = get_page(client, plan)

    section = doc.one("section", **{"aria-labelledby": "hurts-title"})
    rules = [li.text for li in section.one("ul", class_="rules").all("li")]
    assert rules == plan["pain_rules"]  # these protocol texts are already neutral
    flags = section.one("div", class_="redflags")
    assert "Stop and call your clinician" in flags.one("h3").text
    same_day = [li.text for li in flags.all("li")]
    assert same_day == [page.RED_FLAG_TEXTS[f] for f in RedFlag if f not in page.EMERGENCY_FLAGS]
    # Being unable to bear weight is an emergency now, never a same-day call (A2 rule 1):
    # no two lines of the page advise differently for the same sign.
    assert page.RED_FLAG_TEXTS[RedFlag.CANNOT_BEAR_WEIGHT] not in same_day
    assert "emergency department now" in flags.text
    for line in [*rules, *same_day]:
        if "bear weight" in line or "put weight" in line:
            assert "emergency department now" in line and "same day" not in line, line


def test_all_four_ways_to_subscribe(client: FlaskClient, plan: dict[str, Any]) -> None:
    token = token_of(plan)
    feed = f"{BASE_URL}/feeds/{token}.ics"

    _, doc = get_page(client, plan)

    assert (
        doc.one("a", id="subscribe-webcal").attrs["href"]
        == f"webcal://plans.example/feeds/{token}.ics"
    )
    google = urlsplit(doc.one("a", id="subscribe-google").attrs["href"] or "")
    assert (google.scheme, google.netloc, google.path) == (
        "https",
        "calendar.google.com",
        "/calendar/render",
    )
    assert parse_qs(google.query)["cid"] == [f"webcal://plans.example/feeds/{token}.ics"]
    assert doc.one("a", id="subscribe-https").attrs["href"] == feed
    field_ = doc.one("input", id="feed-url")
    assert (field_.attrs["value"], "readonly" in field_.attrs) == (feed, True)
    assert doc.one("label", **{"for": "feed-url"}).text
    copy = doc.one("button", **{"data-copy": "feed-url"})
    assert "hidden" in copy.attrs  # shown by page.js only where the clipboard API exists
    download = doc.one("a", id="download-ics")
    assert download.attrs["href"] == feed + "?download=1"
    assert "download" in download.attrs

    served = client.get(urlsplit(feed).path, query_string={"download": "1"})
    assert served.status_code == 200
    assert served.headers["Content-Disposition"].startswith("attachment")
    assert served.get_data().startswith(b"BEGIN:VCALENDAR")


def test_headers_keep_the_page_private_and_locked_down(
    client: FlaskClient, plan: dict[str, Any]
) -> None:
    response, doc = get_page(client, plan)
    html = response.get_data(as_text=True)

    assert response.headers["Cache-Control"] == "no-store"
    csp = {
        part.split()[0]: part.split()[1:]
        for part in response.headers["Content-Security-Policy"].split(";")
    }
    assert csp["default-src"] == ["'self'"]
    assert csp["script-src"] == ["'self'"]
    assert csp["style-src"] == ["'self'"]
    assert csp["frame-ancestors"] == ["'none'"]
    assert "unsafe-inline" not in response.headers["Content-Security-Policy"]
    assert response.headers["Referrer-Policy"] == "no-referrer"
    metas = {m.attrs.get("name"): m.attrs.get("content") for m in doc.all("meta")}
    assert metas["referrer"] == "no-referrer"
    assert "noindex" in (metas["robots"] or "")
    assert "width=device-width" in (metas["viewport"] or "")
    # Nothing inline for the CSP to block, nothing from another host.
    assert all(s.attrs.get("src") for s in doc.all("script"))
    assert doc.all("style") == [] and " style=" not in html
    assets = [
        n.attrs.get("src") or n.attrs.get("href") for n in doc.all("script") + doc.all("link")
    ]
    assets += [n.attrs.get("src") for n in doc.all("img")]
    assert assets and all((a or "").startswith("/p/static/") for a in assets)
    for asset in set(assets):
        served = client.get(asset or "")
        assert served.status_code == 200, asset
        assert served.mimetype in {"text/css", "text/javascript", "image/svg+xml"}
        served.close()


def test_page_structure_is_accessible(client: FlaskClient, plan: dict[str, Any]) -> None:
    _, doc = get_page(client, plan)

    assert doc.one("html").attrs["lang"] == "en"
    assert doc.one("h1").text == "Your return-to-running plan"
    for landmark in ("header", "main", "footer"):
        doc.one(landmark)
    levels = [int(n.tag[1]) for n in doc.all() if re.fullmatch(r"h[1-6]", n.tag)]
    assert levels[0] == 1
    assert all(b - a <= 1 for a, b in zip(levels, levels[1:], strict=False)), levels
    for field_ in doc.all("input"):
        assert doc.all("label", **{"for": field_.attrs["id"] or ""}), field_.attrs
    for section in doc.one("main").all("section"):
        assert doc.one(id=section.attrs["aria-labelledby"] or "").tag.startswith("h")


def test_unknown_token_is_a_404_page_not_json(client: FlaskClient, plan: dict[str, Any]) -> None:
    response = client.get("/p/" + "x" * 43)

    assert response.status_code == 404
    assert response.mimetype == "text/html"
    assert response.headers["Cache-Control"] == "no-store"
    assert "default-src 'self'" in response.headers["Content-Security-Policy"]
    doc = parse(response.get_data(as_text=True))
    assert doc.one("h1").text == "This page is not available"
    assert doc.one("footer").text == page.DISCLAIMER


def test_rotated_token_takes_the_old_page_down(
    client: FlaskClient, plan: dict[str, Any], auth: dict[str, str]
) -> None:
    rotated = client.post(f"/v1/plans/{plan['id']}/feed-token", json={}, headers=auth)
    assert rotated.status_code == 201

    assert client.get(plan["links"]["page"]).status_code == 404
    new_page = urlsplit(rotated.get_json()["page"]).path
    assert new_page != plan["links"]["page"]
    assert client.get(new_page).status_code == 200

    assert client.delete(f"/v1/plans/{plan['id']}/feed-token", headers=auth).status_code == 204
    assert client.get(new_page).status_code == 404


def test_busy_feed_token_does_not_open_the_page(
    client: FlaskClient, plan: dict[str, Any], auth: dict[str, str]
) -> None:
    links = client.put(f"/v1/plans/{plan['id']}/feed", json={"busy": True}, headers=auth).get_json()
    busy_token = links["busy_feed"].rsplit("/", 1)[1].removesuffix(".ics")

    assert client.get(links["busy_feed"].removeprefix(BASE_URL)).status_code == 200
    assert client.get(f"/p/{busy_token}").status_code == 404


def test_cancelled_plan_says_so(
    client: FlaskClient, plan: dict[str, Any], auth: dict[str, str], clock: Clock
) -> None:
    clock.local("2026-12-10")
    assert client.post(f"/v1/plans/{plan['id']}/cancel", json={}, headers=auth).status_code == 201

    _, doc = get_page(client, plan)

    notice = doc.one("section", class_="notice")
    assert notice.one("h2").text == "This plan has been cancelled"
    assert "Thursday 10 December 2026" in notice.text
    assert doc.one("span", class_="pill").text == "Cancelled"
    assert (
        "No more sessions are planned."
        in doc.one("section", **{"aria-labelledby": "next-title"}).text
    )


def test_stopped_plan_puts_the_notice_and_urgent_alert_first(
    app: Flask, client: FlaskClient, plan: dict[str, Any], clock: Clock
) -> None:
    clock.local("2027-01-20", 18)
    check_in = {"date": "2027-01-20", "red_flags": ["night_pain"]}
    # Through the service: what the page shows does not depend on the check-in route.
    app.extensions["planner"]["planner"].check_in("clinic-a", plan["id"], check_in)

    response, doc = get_page(client, plan)

    main = doc.one("main")
    sections = main.all("section")
    assert "notice--stopped" in (sections[0].attrs["class"] or "")
    assert sections[0].one("h2").text == "Your plan is on hold"
    alerts = doc.one("ul", class_="alerts").all("li")
    assert alerts[0].attrs["data-code"] == "stop_and_refer"
    assert alerts[0].text.startswith("Urgent:")
    assert page.NEUTRAL_ALERTS["stop_and_refer"] in alerts[0].text
    assert "night_pain" not in response.get_data(as_text=True)  # the raw message is not shown
    card = doc.one(id="next-session")
    assert "Clinical review" in card.text and "Tomorrow" in card.text
    assert card.one("h3").text.endswith("Urgent clinical review")
    # Today's walk (still "planned" in the plan) is on hold; later ones were cancelled.
    walks = [li for li in doc.one("ol", class_="week").all("li") if "Walk ·" in li.text]
    assert "On hold" in walks[0].text
    assert all("On hold" in li.text or "Cancelled" in li.text for li in walks)


def test_next_session_skips_one_that_is_already_over_today(
    client: FlaskClient, plan: dict[str, Any], clock: Clock
) -> None:
    first_run = plan["expected_return_to_run_date"]
    clock.local(first_run, 18)  # the 07:00 run/walk ended at 07:30
    later = next(s for s in plan["sessions"] if s["date"] > first_run and s["status"] == "planned")

    _, doc = get_page(client, plan)

    assert doc.one(id="next-session").all("time")[0].attrs["datetime"] == later["date"]
    week = doc.one("ol", class_="week").all("time", class_="week__day")
    assert week[0].attrs["datetime"] == first_run  # still listed for the day


# ----------------------------------------------------------------------------- privacy


@pytest.mark.parametrize("body", [PLAN, SURGICAL_PLAN], ids=["conservative", "surgical"])
def test_no_diagnosis_words_by_default(
    client: FlaskClient, make_plan: Callable[..., dict[str, Any]], body: dict[str, Any]
) -> None:
    plan = make_plan(body)
    # The plan's own texts do name it: the page must filter them.
    assert any(names_diagnosis(a["message"]) for a in plan["alerts"])

    response, _ = get_page(client, plan)

    html = visible_words(response.get_data(as_text=True), token_of(plan))
    leaks = [word for word in DIAGNOSIS_WORDS if word in html]
    assert leaks == []


def test_full_detail_shows_the_protocol_wording(
    client: FlaskClient, plan: dict[str, Any], auth: dict[str, str]
) -> None:
    assert (
        client.put(
            f"/v1/plans/{plan['id']}/feed", json={"detail": "full"}, headers=auth
        ).status_code
        == 200
    )

    response, doc = get_page(client, plan)

    html = response.get_data(as_text=True)
    assert plan["protocol"]["title"] in doc.one("p", class_="subtitle").text
    shown = [li.text for li in doc.one("ul", class_="alerts").all("li")]
    for alert in plan["alerts"]:
        assert any(alert["message"] in text for text in shown)
    assert "fracture" in visible_words(html, token_of(plan))
    assert "stress" in visible_words(html, token_of(plan))


def test_neutral_texts_cover_every_alert_and_red_flag() -> None:
    # Every alert code the domain can raise, read from its source so new ones are caught.
    domain_dir = Path(page.__file__).resolve().parents[1] / "domain"
    domain_codes = {
        code
        for source in domain_dir.glob("*.py")
        for code in re.findall(r'code="([a-z_]+)"', source.read_text(encoding="utf-8"))
    }
    assert {"emergency_care", "avoid_nsaids", "triad_restricted"} <= domain_codes
    assert domain_codes <= set(page.NEUTRAL_ALERTS)
    for text in [
        *page.NEUTRAL_ALERTS.values(),
        page.NEUTRAL_ALERT_FALLBACK,
        *page.RED_FLAG_TEXTS.values(),
    ]:
        assert not names_diagnosis(text), text
    assert set(page.RED_FLAG_TEXTS) == set(RedFlag)
    unknown = page.alert_views(
        [{"code": "new_code", "severity": "urgent", "message": "stress"}], full=False
    )
    assert unknown[0].text == page.NEUTRAL_ALERT_FALLBACK


def test_clean_texts_drops_only_what_names_the_diagnosis() -> None:
    texts = [
        "No progression on imaging (the fracture line did not grow). Keep going.",
        "A stress reaction heals.",
        "Walk on flat ground.",
    ]

    assert page.clean_texts(texts, full=False) == [
        "No progression on imaging. Keep going.",
        "Walk on flat ground.",
    ]
    assert page.clean_texts(texts, full=True) == texts
