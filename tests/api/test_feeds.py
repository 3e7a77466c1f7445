"""Calendar feeds through the test client: every rule of the feed contract."""

from __future__ import annotations

import base64
import hashlib
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import vobject
from flask import Flask
from flask.testing import FlaskClient
from icalendar import Calendar
from werkzeug.http import http_date, parse_date

from planner.export import Exporters
from tests.api.conftest import EXAMPLE_PLAN
from tests.api.contract import Contract
from tests.clock import Clock

DIAGNOSIS = ("femoral", "fracture", "stress", "neck", "injury")


def create(client: FlaskClient, auth: dict[str, str], **overrides: Any) -> dict[str, Any]:
    response = client.post("/v1/plans", json={**EXAMPLE_PLAN, **overrides}, headers=auth)
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def events(body: bytes) -> dict[str, Any]:
    return {str(e["UID"]): e for e in Calendar.from_ical(body).walk("VEVENT")}


def test_feed_needs_no_key_and_is_a_subscribable_calendar(
    client: FlaskClient, auth: dict[str, str], clock: Clock, contract: Contract
) -> None:
    plan = create(client, auth)
    feed = plan["links"]["feed"]

    response = client.get(feed)

    contract.check("GET", feed, response)
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "text/calendar; charset=utf-8"
    assert "Content-Disposition" not in response.headers
    assert response.headers["ETag"].startswith('"') and response.headers["Last-Modified"]
    text = response.get_data(as_text=True)
    for line in ("METHOD:PUBLISH", "REFRESH-INTERVAL;VALUE=DURATION:", "X-PUBLISHED-TTL:"):
        assert line in text
    assert {s["uid"] for s in plan["sessions"]} <= events(response.get_data()).keys()
    assert len(feed.split("/")[-1].removesuffix(".ics")) >= 43  # 256 bits, base64url


def test_one_off_download_is_an_attachment(
    client: FlaskClient, auth: dict[str, str], clock: Clock
) -> None:
    plan = create(client, auth)

    response = client.get(plan["links"]["feed"] + "?download=1")

    assert response.headers["Content-Disposition"].startswith("attachment;")


def test_a_browser_gets_a_help_page(
    client: FlaskClient, auth: dict[str, str], clock: Clock
) -> None:
    plan = create(client, auth)
    browser = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"

    page = client.get(plan["links"]["feed"], headers={"Accept": browser})
    calendar_app = client.get(plan["links"]["feed"], headers={"Accept": "text/calendar"})

    assert page.mimetype == "text/html" and "webcal://" in page.get_data(as_text=True)
    assert calendar_app.mimetype == "text/calendar"
    assert page.headers["X-Content-Type-Options"] == "nosniff"
    policy = page.headers["Content-Security-Policy"]
    assert "default-src 'none'" in policy and "script-src" not in policy
    style = page.get_data(as_text=True).split("<style>")[1].split("</style>")[0]
    digest = base64.b64encode(hashlib.sha256(style.encode()).digest()).decode()
    assert f"style-src 'sha256-{digest}'" in policy  # the page's own style, and only it


def test_conditional_get_rules(client: FlaskClient, auth: dict[str, str], clock: Clock) -> None:
    feed = create(client, auth)["links"]["feed"]
    first = client.get(feed)
    etag, last_modified = first.headers["ETag"], first.headers["Last-Modified"]
    later = http_date(parse_date(last_modified) + timedelta(days=1))
    earlier = http_date(parse_date(last_modified) - timedelta(days=1))

    same = client.get(feed, headers={"If-None-Match": etag})
    weak = client.get(feed, headers={"If-None-Match": "W/" + etag})
    by_date = client.get(feed, headers={"If-Modified-Since": last_modified})
    # If-None-Match decides alone when present, even if the date says "not modified".
    precedence = client.get(feed, headers={"If-None-Match": '"other"', "If-Modified-Since": later})
    stale_date = client.get(feed, headers={"If-Modified-Since": earlier})
    garbage = client.get(feed, headers={"If-Modified-Since": "yesterday-ish"})

    for response in (same, weak, by_date):
        assert response.status_code == 304
        assert response.get_data() == b""
        assert response.headers["ETag"] == etag
        assert response.headers["Last-Modified"] == last_modified
        assert response.headers["Cache-Control"] == first.headers["Cache-Control"]
    for response in (precedence, stale_date, garbage):
        assert response.status_code == 200


def test_conditional_get_does_not_render(
    app: Flask, client: FlaskClient, auth: dict[str, str], clock: Clock
) -> None:
    plan = create(client, auth)
    feed = plan["links"]["feed"]
    etag = client.get(feed).headers["ETag"]

    def refuse(*_: Any, **__: Any) -> bytes:
        raise AssertionError("a read must not render")

    planner = app.extensions["planner"]["planner"]
    planner.exporters = Exporters(plan_json=refuse, calendar=refuse)

    assert client.get(feed, headers={"If-None-Match": etag}).status_code == 304
    assert client.get(feed).status_code == 200
    with pytest.raises(AssertionError, match="must not render"):  # the check can fail
        planner.configure_feed("clinic-a", plan["id"], {"detail": "full"})


def test_rotation_and_revocation(
    client: FlaskClient, auth: dict[str, str], clock: Clock, contract: Contract
) -> None:
    plan = create(client, auth)
    old = plan["links"]["feed"]
    path = f"/v1/plans/{plan['id']}/feed-token"

    rotated = client.post(path, headers=auth)

    contract.check("POST", path, rotated)
    assert rotated.status_code == 201
    new = rotated.get_json()["feed"]
    assert rotated.get_json()["webcal"].startswith("webcal://")
    assert rotated.get_json()["google"].startswith("https://calendar.google.com/")
    assert client.get(old).status_code == 404
    assert client.get(new.split("localhost", 1)[1]).status_code == 200
    assert client.get(f"/v1/plans/{plan['id']}", headers=auth).get_json()["links"]["feed"] != old

    revoked = client.delete(path, headers=auth)

    contract.check("DELETE", path, revoked)
    assert revoked.status_code == 204
    assert client.get(new.split("localhost", 1)[1]).status_code == 404
    assert client.get(f"/v1/plans/{plan['id']}", headers=auth).get_json()["links"]["feed"] is None


def test_unknown_feed_is_404_problem(client: FlaskClient) -> None:
    response = client.get("/feeds/" + "A" * 43 + ".ics")

    assert response.status_code == 404
    assert response.mimetype == "application/problem+json"


def test_cancellation_keeps_cancelled_events_for_14_days_then_drops_them(
    client: FlaskClient, auth: dict[str, str], clock: Clock, contract: Contract
) -> None:
    plan = create(client, auth)
    feed = plan["links"]["feed"]
    before = client.get(feed)
    clock.on("2026-12-01")
    path = f"/v1/plans/{plan['id']}/cancel"

    cancelled = client.post(path, json={"reason": "moved clinic"}, headers=auth)

    contract.check("POST", path, cancelled)
    assert cancelled.get_json()["plan"]["status"] == "cancelled"
    during = client.get(feed)
    old, new = events(before.get_data()), events(during.get_data())
    future = [s for s in plan["sessions"] if s["date"] > "2026-12-01"]
    for session in future:
        assert str(new[session["uid"]]["STATUS"]) == "CANCELLED"
        assert int(new[session["uid"]]["SEQUENCE"]) > int(old[session["uid"]]["SEQUENCE"])
    past = [s for s in plan["sessions"] if s["date"] <= "2026-12-01"]
    for session in past:
        assert new[session["uid"]].to_ical() == old[session["uid"]].to_ical()
    assert parse_date(during.headers["Last-Modified"]) >= parse_date(
        before.headers["Last-Modified"]
    )

    clock.now = clock.now + timedelta(days=14, seconds=1)
    after = client.get(feed)

    remaining = events(after.get_data())
    assert not any(session["uid"] in remaining for session in future)
    assert all(session["uid"] in remaining for session in past)
    assert parse_date(after.headers["Last-Modified"]) > parse_date(during.headers["Last-Modified"])
    assert after.headers["ETag"] != during.headers["ETag"]


def test_cancelled_events_stay_gone_after_later_writes(
    client: FlaskClient, auth: dict[str, str], clock: Clock
) -> None:
    """Once the 14-day window has dropped the cancelled events, no later write — feed
    settings, a token rotation, a confirmation — brings them back as ghosts."""
    plan = create(client, auth)
    clock.on("2026-12-01")
    client.post(f"/v1/plans/{plan['id']}/cancel", json={"reason": "moved clinic"}, headers=auth)
    future = {s["uid"] for s in plan["sessions"] if s["date"] > "2026-12-01"}
    clock.now = clock.now + timedelta(days=14, seconds=1)
    assert not future & set(events(client.get(plan["links"]["feed"]).get_data()))

    settings = client.put(
        f"/v1/plans/{plan['id']}/feed", json={"reminder_minutes": 30}, headers=auth
    )
    rotated = client.post(f"/v1/plans/{plan['id']}/feed-token", headers=auth).get_json()
    confirmed = client.post(f"/v1/plans/{plan['id']}/confirm", headers=auth)
    clock.now = clock.now + timedelta(days=30)

    assert settings.status_code == 200 and confirmed.status_code == 200
    for feed in (rotated["feed"], rotated["busy_feed"]):
        if feed is None:
            continue
        shown = events(client.get(feed.removeprefix("http://localhost")).get_data())
        assert not future & set(shown), "cancelled sessions came back after the window"


def test_last_modified_never_moves_backwards(
    client: FlaskClient, auth: dict[str, str], clock: Clock
) -> None:
    plan = create(client, auth)
    feed = plan["links"]["feed"]
    clock.on("2026-11-23")
    client.post(f"/v1/plans/{plan['id']}/check-ins", json={"date": "2026-11-23"}, headers=auth)
    first = parse_date(client.get(feed).headers["Last-Modified"])

    clock.now = clock.now - timedelta(hours=3)  # another instance with a slow clock
    client.post(f"/v1/plans/{plan['id']}/check-ins", json={"date": "2026-11-22"}, headers=auth)

    assert parse_date(client.get(feed).headers["Last-Modified"]) >= first


def test_a_change_within_the_same_second_is_not_a_304_by_date(
    client: FlaskClient, auth: dict[str, str], clock: Clock
) -> None:
    plan = create(client, auth, feed={"busy": True})
    feed = plan["links"]["feed"]
    first = client.get(feed).headers["Last-Modified"]

    # the clock does not move: a settings change and a report within one second
    client.put(f"/v1/plans/{plan['id']}/feed", json={"detail": "full"}, headers=auth)
    changed = client.get(feed, headers={"If-Modified-Since": first})

    assert changed.status_code == 200
    assert parse_date(changed.headers["Last-Modified"]) > parse_date(first)


def test_a_write_that_changes_no_calendar_bytes_keeps_last_modified(
    client: FlaskClient, auth: dict[str, str], clock: Clock
) -> None:
    plan = create(client, auth)
    before = client.get(plan["links"]["feed"])
    clock.now = clock.now + timedelta(hours=5)

    client.post(f"/v1/plans/{plan['id']}/confirm", headers=auth)
    rotated = client.post(f"/v1/plans/{plan['id']}/feed-token", headers=auth).get_json()
    after = client.get(rotated["feed"].removeprefix("http://localhost"))

    assert after.get_data() == before.get_data()
    assert after.headers["Last-Modified"] == before.headers["Last-Modified"]
    revalidated = client.get(
        rotated["feed"].removeprefix("http://localhost"),
        headers={"If-Modified-Since": before.headers["Last-Modified"]},
    )
    assert revalidated.status_code == 304


def test_unchanged_events_are_byte_identical_between_revisions(
    client: FlaskClient, auth: dict[str, str], clock: Clock
) -> None:
    plan = create(client, auth)
    feed = plan["links"]["feed"]
    before = events(client.get(feed).get_data())
    clock.on("2026-11-23")
    revised = client.post(
        f"/v1/plans/{plan['id']}/check-ins", json={"date": "2026-11-23"}, headers=auth
    ).get_json()["plan"]

    after = events(client.get(feed).get_data())

    assert revised["revision"] == 2
    assert before.keys() == after.keys()
    assert all(before[uid].to_ical() == after[uid].to_ical() for uid in before)


def test_privacy_by_default_full_detail_on_request_and_a_busy_feed(
    client: FlaskClient, auth: dict[str, str], clock: Clock, contract: Contract
) -> None:
    private = create(client, auth)
    default_text = client.get(private["links"]["feed"]).get_data(as_text=True).lower()
    assert not any(word in default_text for word in DIAGNOSIS)

    path = f"/v1/plans/{private['id']}/feed"
    configured = client.put(
        path, json={"detail": "full", "busy": True, "reminder_minutes": 30}, headers=auth
    )

    contract.check("PUT", path, configured)
    links = configured.get_json()
    full_text = client.get(private["links"]["feed"]).get_data(as_text=True)
    assert "femoral" in full_text.lower() or "fracture" in full_text.lower()
    assert "BEGIN:VALARM" in full_text and "TRIGGER:-PT30M" in full_text
    busy = client.get(links["busy_feed"].split("localhost", 1)[1])
    assert busy.status_code == 200
    busy_events = Calendar.from_ical(busy.get_data()).walk("VEVENT")
    assert busy_events and {str(e["SUMMARY"]) for e in busy_events} == {"Training"}
    assert all("DESCRIPTION" not in e for e in busy_events)


def test_two_independent_parsers_agree_across_a_dst_change(
    client: FlaskClient, auth: dict[str, str], clock: Clock
) -> None:
    """icalendar and vobject read the same events at the same local times."""
    plan = create(client, auth, timezone="America/New_York")
    body = client.get(plan["links"]["feed"]).get_data()
    new_york = ZoneInfo("America/New_York")

    by_icalendar = {str(e["UID"]): e["DTSTART"].dt for e in Calendar.from_ical(body).walk("VEVENT")}
    by_vobject = {
        str(e.uid.value): e.dtstart.value for e in vobject.readOne(body.decode()).vevent_list
    }

    assert by_icalendar.keys() == by_vobject.keys()
    timed = [s for s in plan["sessions"] if s["start"]]
    crosses_dst = {datetime.fromisoformat(s["start"]).utcoffset() for s in timed}
    assert len(crosses_dst) == 2, "the plan should span a DST change"
    for session in timed:
        a, b = by_icalendar[session["uid"]], by_vobject[session["uid"]]
        assert a == b == datetime.fromisoformat(session["start"])
        assert a.astimezone(new_york).strftime("%H:%M") >= "07:00"
    firsts = {}
    for session in timed:
        firsts.setdefault(session["date"], session)
    assert {
        by_vobject[s["uid"]].astimezone(new_york).strftime("%H:%M") for s in firsts.values()
    } == {"07:00"}


def test_feed_and_page_links_are_absolute_under_the_public_base_url(
    database_url: str, contract: Contract
) -> None:
    from planner.web import create_app
    from tests.builders import shipped_catalog

    base = "https://plans.clinic.example"
    app = create_app(
        {"TESTING": True, "DATABASE_URL": database_url, "PUBLIC_BASE_URL": base},
        catalog=shipped_catalog(),
    )
    try:
        _, secret = app.extensions["planner"]["store"].create_key("k", "clinic-a")
        auth = {"Authorization": f"Bearer {secret}"}
        client = app.test_client()
        created = client.post("/v1/plans", json=EXAMPLE_PLAN, headers=auth)
        plan = created.get_json()
        links = plan["links"]

        assert links["feed"].startswith(f"{base}/feeds/") and links["feed"].endswith(".ics")
        assert links["page"].startswith(f"{base}/p/")
        assert links["self"] == f"/v1/plans/{plan['id']}"  # API links stay relative
        # the fast path and the app (which serves ?revision=N) give the same bytes
        fast = client.get(f"/v1/plans/{plan['id']}", headers=auth)
        slow = client.get(f"/v1/plans/{plan['id']}?revision=1", headers=auth)
        assert fast.get_data() == slow.get_data() == created.get_data()
        listed = client.get("/v1/plans", headers=auth).get_json()["items"][0]
        assert listed["links"]["page"] == links["page"]
        contract.check("POST", "/v1/plans", created)
        feed_path = links["feed"].removeprefix(base)
        assert client.get(feed_path).status_code == 200
    finally:
        app.extensions["planner"]["store"].dispose()
