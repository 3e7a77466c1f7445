"""Check-ins, phase gates, cancellation and revision history over HTTP."""

from __future__ import annotations

import threading
from datetime import date, timedelta
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from icalendar import Calendar

from tests.api.conftest import EXAMPLE_PLAN
from tests.api.contract import Contract
from tests.clock import Clock


@pytest.fixture
def plan(client: FlaskClient, auth: dict[str, str], clock: Clock) -> dict[str, Any]:
    body = {**EXAMPLE_PLAN, "risk_factors": [], "timezone": "UTC"}
    response = client.post("/v1/plans", json=body, headers=auth)
    assert response.status_code == 201
    return response.get_json()


def phase(plan: dict[str, Any], key: str) -> dict[str, Any]:
    return next(p for p in plan["phases"] if p["key"] == key)


def running(plan: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        s for s in plan["sessions"] if s["kind"] in ("run_walk", "run") and s["status"] == "planned"
    ]


def gate(client: FlaskClient, auth: dict[str, str], plan_id: str, key: str, **body: Any):  # type: ignore[no-untyped-def]
    return client.post(f"/v1/plans/{plan_id}/phases/{key}/gate", json=body, headers=auth)


def check_in(client: FlaskClient, auth: dict[str, str], plan_id: str, **body: Any):  # type: ignore[no-untyped-def]
    return client.post(f"/v1/plans/{plan_id}/check-ins", json=body, headers=auth)


def reach_running(
    client: FlaskClient, auth: dict[str, str], clock: Clock, plan: dict[str, Any]
) -> dict[str, Any]:
    """Gate the protection and walking phases on their review days."""
    for key in ("non_weight_bearing", "walking"):
        end = phase(plan, key)["end_date"]
        clock.on(end)
        response = gate(client, auth, plan["id"], key, met=True, date=end)
        assert response.status_code == 201, response.get_json()
        plan = response.get_json()["plan"]
    return plan


# ----------------------------------------------------------------------------- gates


def test_gate_met_early_starts_the_next_phase_the_next_day(
    client: FlaskClient,
    auth: dict[str, str],
    clock: Clock,
    plan: dict[str, Any],
    contract: Contract,
) -> None:
    clock.on("2026-12-28")
    path = f"/v1/plans/{plan['id']}/phases/non_weight_bearing/gate"

    response = client.post(
        path,
        json={
            "met": True,
            "date": "2026-12-28",
            "criteria": ["no pain at rest", "MRI: no progression"],
        },
        headers=auth,
    )

    contract.check("POST", path, response)
    assert response.status_code == 201
    revised = response.get_json()["plan"]
    assert revised["revision"] == 2
    assert phase(revised, "non_weight_bearing")["end_date"] == "2026-12-28"
    assert phase(revised, "protected_weight_bearing")["start_date"] == "2026-12-29"
    assert revised["progress"]["gates"][0]["criteria"] == ["no pain at rest", "MRI: no progression"]
    assert "next phase starts on 2026-12-29" in response.get_json()["decision"]["reason"]


def test_gate_not_met_extends_the_phase_with_a_new_review(
    client: FlaskClient, auth: dict[str, str], clock: Clock, plan: dict[str, Any]
) -> None:
    end = phase(plan, "non_weight_bearing")["end_date"]
    clock.on(end)

    revised = gate(client, auth, plan["id"], "non_weight_bearing", met=False, date=end).get_json()[
        "plan"
    ]

    new_end = (date.fromisoformat(end) + timedelta(days=7)).isoformat()
    assert phase(revised, "non_weight_bearing")["end_date"] == new_end
    reviews = [
        s
        for s in revised["sessions"]
        if s["phase"] == "non_weight_bearing" and s["kind"] == "review"
    ]
    assert [r["date"] for r in reviews] == [end, new_end]
    assert reviews[0]["uid"] != reviews[1]["uid"]


@pytest.mark.parametrize(
    ("key", "body", "status", "field"),
    [
        ("nope", {"met": True, "date": "2026-11-25"}, 422, "phase"),
        ("non_weight_bearing", {"met": True, "date": "2027-06-01"}, 422, "date"),
        ("walking", {"met": True, "date": "2026-11-25"}, 409, "date"),
        ("non_weight_bearing", {"date": "2026-11-25"}, 422, "met"),
        ("non_weight_bearing", {"met": True, "extend_days": 0}, 422, "extend_days"),
    ],
)
def test_bad_gates_are_refused_and_change_nothing(
    client: FlaskClient,
    auth: dict[str, str],
    clock: Clock,
    plan: dict[str, Any],
    contract: Contract,
    key: str,
    body: dict[str, Any],
    status: int,
    field: str,
) -> None:
    clock.on("2026-11-26")
    path = f"/v1/plans/{plan['id']}/phases/{key}/gate"

    response = client.post(path, json=body, headers=auth)

    contract.check("POST", path, response)
    assert response.status_code == status
    assert field in response.get_json().get("errors", {}), response.get_json()
    assert client.get(f"/v1/plans/{plan['id']}", headers=auth).get_json()["revision"] == 1


# ----------------------------------------------------------------------------- check-ins


def test_check_in_outcomes_follow_the_pain_rules(
    client: FlaskClient,
    auth: dict[str, str],
    clock: Clock,
    plan: dict[str, Any],
    contract: Contract,
) -> None:
    plan = reach_running(client, auth, clock, plan)
    runs = running(plan)
    path = f"/v1/plans/{plan['id']}/check-ins"

    clock.on(runs[0]["date"])
    counted = client.post(path, json={"session_uid": runs[0]["uid"]}, headers=auth)
    contract.check("POST", path, counted)
    assert counted.status_code == 201
    assert counted.get_json()["decision"]["outcome"] == "count"

    clock.on(runs[1]["date"])
    repeated = check_in(client, auth, plan["id"], session_uid=runs[1]["uid"], pain_after=2)
    assert repeated.get_json()["decision"]["outcome"] == "repeat"
    levels = repeated.get_json()["plan"]["progress"]["levels"]
    assert levels == [{"template": "graded_running/run_walk", "level": 0, "counted": 1}]

    clock.on(runs[2]["date"])
    regressed = check_in(client, auth, plan["id"], session_uid=runs[2]["uid"], pain_during=4)
    body = regressed.get_json()
    assert body["decision"]["outcome"] == "regress"
    assert "rest a day" in body["decision"]["reason"]
    day_after = (date.fromisoformat(runs[2]["date"]) + timedelta(days=1)).isoformat()
    assert all(s["date"] != day_after for s in running(body["plan"]))
    assert body["plan"]["revision"] == 6


def test_a_session_counts_once(
    client: FlaskClient, auth: dict[str, str], clock: Clock, plan: dict[str, Any]
) -> None:
    clock.on("2026-11-23")
    assert check_in(client, auth, plan["id"], date="2026-11-23").status_code == 201

    again = check_in(client, auth, plan["id"], date="2026-11-23")

    assert again.status_code == 409
    assert "session_uid" in again.get_json()["errors"]


def test_running_cannot_be_reported_before_its_phase_begins(
    client: FlaskClient, auth: dict[str, str], clock: Clock, plan: dict[str, Any]
) -> None:
    first_run = running(plan)[0]
    clock.on(first_run["date"])  # the protection phase's gate was never recorded

    response = check_in(client, auth, plan["id"], session_uid=first_run["uid"])
    red_flag = check_in(
        client, auth, plan["id"], session_uid=first_run["uid"], red_flags=["night_pain"]
    )

    assert response.status_code == 409
    assert red_flag.status_code == 201  # a red flag is always heard


def test_check_in_by_date_and_the_history_endpoints(
    client: FlaskClient,
    auth: dict[str, str],
    clock: Clock,
    plan: dict[str, Any],
    contract: Contract,
) -> None:
    clock.on("2026-11-23")
    assert (
        check_in(client, auth, plan["id"], date="2026-11-23", notes="upper body ok").status_code
        == 201
    )

    listed = client.get(f"/v1/plans/{plan['id']}/check-ins", headers=auth)
    revisions = client.get(f"/v1/plans/{plan['id']}/revisions", headers=auth)
    first = client.get(f"/v1/plans/{plan['id']}?revision=1", headers=auth)
    missing = client.get(f"/v1/plans/{plan['id']}?revision=9", headers=auth)

    contract.check("GET", f"/v1/plans/{plan['id']}/check-ins", listed)
    contract.check("GET", f"/v1/plans/{plan['id']}/revisions", revisions)
    contract.check("GET", f"/v1/plans/{plan['id']}", first)
    assert listed.get_json()["items"][0]["payload"]["notes"] == "upper body ok"
    assert listed.get_json()["items"][0]["key"] == "tests"
    assert [r["revision"] for r in revisions.get_json()["items"]] == [1, 2]
    assert [r["kind"] for r in revisions.get_json()["items"]] == ["created", "check_in"]
    assert revisions.get_json()["items"][1]["key"] == "tests"
    assert first.get_json()["revision"] == 1
    assert missing.status_code == 404


@pytest.mark.parametrize(
    ("body", "status", "field"),
    [
        ({}, 422, "session_uid"),
        ({"session_uid": "nope"}, 422, "session_uid"),
        ({"date": "2027-03-31"}, 422, "session_uid"),  # in the future
        ({"date": "2026-11-22"}, 422, "date"),  # a Sunday without sessions
        ({"date": "2026-11-22", "pain_during": 11}, 422, "pain_during"),
        ({"date": "2026-11-22", "red_flags": ["sore"]}, 422, "red_flags.0"),
    ],
)
def test_bad_check_ins_are_refused(
    client: FlaskClient,
    auth: dict[str, str],
    clock: Clock,
    plan: dict[str, Any],
    contract: Contract,
    body: dict[str, Any],
    status: int,
    field: str,
) -> None:
    clock.on("2026-11-23")
    path = f"/v1/plans/{plan['id']}/check-ins"

    response = client.post(path, json=body, headers=auth)

    contract.check("POST", path, response)
    assert response.status_code == status
    assert field in response.get_json()["errors"], response.get_json()


def test_a_red_flag_stops_the_plan_and_refers(
    client: FlaskClient, auth: dict[str, str], clock: Clock, plan: dict[str, Any]
) -> None:
    plan = reach_running(client, auth, clock, plan)
    first = running(plan)[0]
    clock.on(first["date"])

    body = check_in(
        client, auth, plan["id"], session_uid=first["uid"], red_flags=["cannot_bear_weight"]
    ).get_json()

    stopped = body["plan"]
    assert body["decision"]["outcome"] == "stop_and_refer"
    assert stopped["status"] == "stopped"
    assert [a["code"] for a in stopped["alerts"]][:2] == ["emergency_care", "stop_and_refer"]
    assert not [s for s in running(stopped) if s["date"] > first["date"]]
    cancelled = [s for s in stopped["sessions"] if s["status"] == "cancelled"]
    assert cancelled and all(s["date"] >= first["date"] for s in cancelled)
    # Cannot bear weight: an emergency, today (domain.md A2 rule 1), not tomorrow.
    assert any(
        s["kind"] == "review" and s["date"] == first["date"] and "Emergency" in s["title"]
        for s in stopped["sessions"]
    )
    later = check_in(client, auth, plan["id"], session_uid=first["uid"])
    assert later.status_code == 409


def test_a_clinician_can_end_a_stopped_plan(
    client: FlaskClient,
    auth: dict[str, str],
    clock: Clock,
    plan: dict[str, Any],
    contract: Contract,
) -> None:
    plan = reach_running(client, auth, clock, plan)
    first = running(plan)[0]
    clock.on(first["date"])
    check_in(client, auth, plan["id"], session_uid=first["uid"], red_flags=["night_pain"])
    clock.on((date.fromisoformat(first["date"]) + timedelta(days=2)).isoformat())
    path = f"/v1/plans/{plan['id']}/cancel"

    ended = client.post(path, json={"reason": "referred to orthopaedics"}, headers=auth)

    contract.check("POST", path, ended)
    assert ended.status_code == 201
    cancelled = ended.get_json()["plan"]
    assert cancelled["status"] == "cancelled"
    today = clock.now.date().isoformat()
    assert not [s for s in cancelled["sessions"] if s["date"] > today and s["status"] == "planned"]
    history = client.get(f"/v1/plans/{plan['id']}/revisions", headers=auth).get_json()["items"]
    assert history[-1]["kind"] == "cancel" and history[-1]["reason"] == "referred to orthopaedics"
    again = client.post(path, json={}, headers=auth)
    assert again.status_code == 409  # a cancelled plan stays cancelled


def test_missed_running_drops_a_level(
    client: FlaskClient, auth: dict[str, str], clock: Clock, plan: dict[str, Any]
) -> None:
    plan = reach_running(client, auth, clock, plan)
    runs = running(plan)
    for run in runs[:4]:  # level 1 done, one session into level 2
        clock.on(run["date"])
        plan = check_in(client, auth, plan["id"], session_uid=run["uid"]).get_json()["plan"]
    assert plan["progress"]["levels"][0]["level"] == 1

    today = date.fromisoformat(runs[3]["date"]) + timedelta(days=6)
    clock.on(today)
    missed = [s for s in running(plan) if runs[3]["date"] < s["date"] <= today.isoformat()]
    assert len(missed) >= 2
    body = check_in(
        client, auth, plan["id"], session_uid=missed[-1]["uid"], pain_after=1
    ).get_json()

    assert body["plan"]["progress"]["levels"][0]["level"] == 0


# ----------------------------------------------------------------------------- concurrency


def test_stale_if_match_is_412_and_stale_revision_is_409(
    client: FlaskClient,
    auth: dict[str, str],
    clock: Clock,
    plan: dict[str, Any],
    contract: Contract,
) -> None:
    clock.on("2026-11-27")
    path = f"/v1/plans/{plan['id']}"
    etag = client.get(path, headers=auth).headers["ETag"]
    assert check_in(client, auth, plan["id"], date="2026-11-23").status_code == 201

    stale = client.post(
        path + "/check-ins", json={"date": "2026-11-24"}, headers={**auth, "If-Match": etag}
    )
    conflict = check_in(client, auth, plan["id"], date="2026-11-25", revision=1)
    fresh_etag = client.get(path, headers=auth).headers["ETag"]
    fresh = client.post(
        path + "/check-ins", json={"date": "2026-11-27"}, headers={**auth, "If-Match": fresh_etag}
    )

    contract.check("POST", path + "/check-ins", stale)
    contract.check("POST", path + "/check-ins", conflict)
    assert stale.status_code == 412
    assert conflict.status_code == 409
    assert fresh.status_code == 201


def test_a_write_answers_the_etag_a_read_gives_so_it_can_chain_if_match(
    client: FlaskClient, auth: dict[str, str], clock: Clock, plan: dict[str, Any]
) -> None:
    clock.on("2026-11-27")
    path = f"/v1/plans/{plan['id']}"
    etag = client.get(path, headers=auth).headers["ETag"]
    for day in ("2026-11-23", "2026-11-24", "2026-11-25"):
        answer = client.post(
            path + "/check-ins", json={"date": day}, headers={**auth, "If-Match": etag}
        )
        assert answer.status_code == 201, answer.get_json()
        etag = answer.headers["ETag"]
        assert etag == client.get(path, headers=auth).headers["ETag"]
        assert answer.get_json()["event"]["key"] == "tests"


def test_racing_check_ins_lose_no_update(
    app: Flask, auth: dict[str, str], clock: Clock, plan: dict[str, Any]
) -> None:
    clock.on("2026-12-04")
    days = sorted({s["date"] for s in plan["sessions"] if s["date"] <= "2026-12-04"})
    assert len(days) >= 8
    statuses: list[int] = []

    def worker(day: str) -> None:
        response = app.test_client().post(
            f"/v1/plans/{plan['id']}/check-ins", json={"date": day}, headers=auth
        )
        statuses.append(response.status_code)

    threads = [threading.Thread(target=worker, args=(day,)) for day in days]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    client = app.test_client()
    final = client.get(f"/v1/plans/{plan['id']}", headers=auth).get_json()
    events = client.get(f"/v1/plans/{plan['id']}/check-ins", headers=auth).get_json()["items"]
    assert statuses.count(201) + statuses.count(409) == len(days)
    assert final["revision"] == 1 + statuses.count(201) == 1 + len(events)
    assert sorted(e["seq"] for e in events) == list(range(1, len(events) + 1))


# ----------------------------------------------------------------------------- feed


def test_feed_after_a_regress_moves_events_with_higher_sequence_and_same_uids(
    client: FlaskClient, auth: dict[str, str], clock: Clock, plan: dict[str, Any]
) -> None:
    plan = reach_running(client, auth, clock, plan)
    feed = plan["links"]["feed"]
    before = {
        str(e["UID"]): e for e in Calendar.from_ical(client.get(feed).get_data()).walk("VEVENT")
    }
    runs = running(plan)
    for run in runs[:3]:
        clock.on(run["date"])
        plan = check_in(client, auth, plan["id"], session_uid=run["uid"]).get_json()["plan"]
    clock.on(runs[3]["date"])
    check_in(client, auth, plan["id"], session_uid=runs[3]["uid"], pain_during=5)

    after = {
        str(e["UID"]): e for e in Calendar.from_ical(client.get(feed).get_data()).walk("VEVENT")
    }

    moved = [
        uid
        for uid in before.keys() & after.keys()
        if before[uid]["DTSTART"].to_ical() != after[uid]["DTSTART"].to_ical()
        or str(before[uid]["SUMMARY"]) != str(after[uid]["SUMMARY"])
    ]
    assert moved, "the regress should have changed later sessions"
    for uid in moved:
        assert int(after[uid]["SEQUENCE"]) > int(before[uid]["SEQUENCE"])
    past = [s["uid"] for s in plan["sessions"] if s["date"] < runs[0]["date"]]
    for uid in past:
        assert before[uid].to_ical() == after[uid].to_ical()


# ---------------------------------------------------------------- from the day of the report


def protection_signed_off(
    client: FlaskClient, auth: dict[str, str], clock: Clock, plan: dict[str, Any]
) -> dict[str, Any]:
    """The plan after a clinician met the protection gate on the day protection ended."""
    end = phase(plan, "non_weight_bearing")["end_date"]
    clock.on(end)
    answer = gate(client, auth, plan["id"], "non_weight_bearing", met=True, date=end)
    revised: dict[str, Any] = answer.get_json()["plan"]
    return revised


def _loading(session: dict[str, Any]) -> bool:
    return session["kind"] in ("walk", "run_walk", "run", "strength")


def test_a_red_flag_about_yesterday_cancels_todays_walk_and_leg_strength(
    client: FlaskClient, auth: dict[str, str], clock: Clock, plan: dict[str, Any]
) -> None:
    plan = protection_signed_off(client, auth, clock, plan)
    walks = [s for s in plan["sessions"] if s["kind"] == "walk"]
    yesterday, today = walks[0], walks[1]
    clock.on(today["date"])

    response = check_in(client, auth, plan["id"], session_uid=yesterday["uid"], red_flags=["limp"])

    assert response.status_code == 201, response.get_json()
    stopped = response.get_json()["plan"]
    assert "upper-body or pool" in response.get_json()["decision"]["reason"]
    for s in stopped["sessions"]:
        if s["date"] >= today["date"] and s["kind"] != "review":
            # nothing planned for the leg from today: only unloaded cross-training
            assert s["status"] == "cancelled" or (
                s["kind"] == "cross_training" and "non-weight-bearing" in s["title"]
            ), s
        if s["date"] >= today["date"] and _loading(s):
            assert s["status"] == "cancelled", s
    assert any(s["kind"] == "review" and s["status"] == "planned" for s in stopped["sessions"])
    # Later phases no longer read as planned, in the JSON and in the feed.
    for p in stopped["phases"]:
        if p["start_date"] > today["date"]:
            assert p["status"] == "cancelled", p["key"]
    feed = Calendar.from_ical(client.get(f"/v1/plans/{plan['id']}.ics", headers=auth).data)
    for event in feed.walk("VEVENT"):
        start = event.decoded("DTSTART")
        day = start.date() if hasattr(start, "date") else start
        categories = event.get("CATEGORIES")
        kind = categories.cats[0] if categories else None
        if day >= date.fromisoformat(today["date"]) and kind in ("walk", "strength", "run"):
            assert str(event["STATUS"]) == "CANCELLED", event["SUMMARY"]


def test_severe_pain_stops_the_plan_and_books_an_urgent_review(
    client: FlaskClient, auth: dict[str, str], clock: Clock, plan: dict[str, Any]
) -> None:
    plan = reach_running(client, auth, clock, plan)
    first, second = running(plan)[:2]
    clock.on((date.fromisoformat(first["date"]) + timedelta(days=1)).isoformat())

    body = check_in(client, auth, plan["id"], session_uid=first["uid"], pain_after=7).get_json()

    assert body["decision"]["outcome"] == "stop_and_refer"
    assert "severe pain (7/10)" in body["decision"]["reason"]
    assert "emergency department" in body["decision"]["reason"]
    stopped = body["plan"]
    assert stopped["status"] == "stopped"
    assert next(s for s in stopped["sessions"] if s["uid"] == second["uid"])["status"] == (
        "cancelled"
    )
    assert any(
        s["kind"] == "review" and s["title"] == "Urgent clinical review"
        for s in stopped["sessions"]
    )


def test_unsettled_pain_while_protected_stops_the_plan(
    client: FlaskClient, auth: dict[str, str], clock: Clock, plan: dict[str, Any]
) -> None:
    first = next(s for s in plan["sessions"] if s["phase"] == "non_weight_bearing")
    clock.on((date.fromisoformat(first["date"]) + timedelta(days=1)).isoformat())

    body = check_in(
        client, auth, plan["id"], session_uid=first["uid"], pain_next_morning=2
    ).get_json()

    assert body["decision"]["outcome"] == "stop_and_refer"
    assert "not settled" in body["decision"]["reason"]
    assert body["plan"]["status"] == "stopped"


def test_a_regress_reported_before_todays_run_lowers_it(
    client: FlaskClient, auth: dict[str, str], clock: Clock, plan: dict[str, Any]
) -> None:
    plan = reach_running(client, auth, clock, plan)
    for s in running(plan)[:4]:  # level 2 reached after three, one counted
        clock.on(s["date"])
        plan = check_in(client, auth, plan["id"], session_uid=s["uid"]).get_json()["plan"]
    painful, today = running(plan)[4], running(plan)[5]
    assert painful["title"].startswith("Walk 4") and today["title"].startswith("Walk 4")
    clock.on(today["date"])  # reported on the next run day, before its run

    body = check_in(client, auth, plan["id"], session_uid=painful["uid"], pain_after=4).get_json()

    assert body["decision"]["outcome"] == "regress"
    revised = body["plan"]
    # Today is the rest day (counted from the report): no run today …
    assert not [s for s in running(revised) if s["date"] == today["date"]]
    # … and today's run, with every later one, is at the lower level.
    moved = next(s for s in revised["sessions"] if s["uid"] == today["uid"])
    assert moved["status"] == "planned" and moved["date"] > today["date"]
    assert moved["title"].startswith("Walk 5")
    later = [s for s in running(revised) if s["date"] > today["date"]]
    assert later[0]["title"].startswith("Walk 5")


def test_a_painful_walk_gets_a_rest_day_before_the_next_walk(
    client: FlaskClient, auth: dict[str, str], clock: Clock, plan: dict[str, Any]
) -> None:
    plan = protection_signed_off(client, auth, clock, plan)
    walks = [s for s in plan["sessions"] if s["kind"] == "walk"]
    painful = walks[3]
    next_day = (date.fromisoformat(painful["date"]) + timedelta(days=1)).isoformat()
    clock.on(next_day)  # reported the next morning

    body = check_in(
        client, auth, plan["id"], session_uid=painful["uid"], pain_building=True
    ).get_json()

    assert body["decision"]["outcome"] == "regress"
    revised = body["plan"]
    assert not [
        s
        for s in revised["sessions"]
        if s["kind"] == "walk" and s["date"] == next_day and s["status"] == "planned"
    ]
    after = [
        s
        for s in revised["sessions"]
        if s["kind"] == "walk" and s["date"] > next_day and s["status"] == "planned"
    ]
    assert after and after[0]["title"] == "Walk 10 min"


def test_pain_rules_send_unable_to_bear_weight_to_an_emergency_department(
    client: FlaskClient, auth: dict[str, str], plan: dict[str, Any]
) -> None:
    rules = plan["pain_rules"]
    weight = [r for r in rules if "bear weight" in r]
    assert weight and all("emergency department now" in r for r in weight)
    assert not [r for r in rules if "same day" in r and "bear weight" in r]
    walk = next(s for s in plan["sessions"] if s["kind"] == "walk")
    feed = client.get(f"/v1/plans/{plan['id']}.ics", headers=auth).data.decode()
    unfolded = feed.replace("\r\n ", "")
    assert walk["uid"] in unfolded
    assert "emergency department now" in unfolded
    assert "or being unable to bear weight" not in unfolded


def test_cancel_cancels_the_phase_banners_too(
    client: FlaskClient, auth: dict[str, str], clock: Clock, plan: dict[str, Any]
) -> None:
    today = "2026-12-10"
    clock.on(today)
    before = Calendar.from_ical(client.get(f"/v1/plans/{plan['id']}.ics", headers=auth).data)
    sequences = {str(e["UID"]): int(e["SEQUENCE"]) for e in before.walk("VEVENT")}

    response = client.post(
        f"/v1/plans/{plan['id']}/cancel", json={"reason": "moved abroad"}, headers=auth
    )
    assert response.status_code in (200, 201), response.get_json()
    cancelled = response.get_json()["plan"]
    assert all(p["status"] == "cancelled" for p in cancelled["phases"] if p["end_date"] > today)

    feed = Calendar.from_ical(client.get(f"/v1/plans/{plan['id']}.ics", headers=auth).data)
    banners = [e for e in feed.walk("VEVENT") if "phase" in (e.get("CATEGORIES").cats or [])]
    assert banners
    for event in banners:
        end = event.decoded("DTEND")
        if end > date.fromisoformat(today) + timedelta(days=1):
            assert str(event["STATUS"]) == "CANCELLED", event["SUMMARY"]
            assert int(event["SEQUENCE"]) > sequences[str(event["UID"])]


def test_a_gate_on_a_phase_without_a_review_is_refused(
    client: FlaskClient, auth: dict[str, str], clock: Clock, plan: dict[str, Any]
) -> None:
    plan = protection_signed_off(client, auth, clock, plan)
    day = phase(plan, "protected_weight_bearing")["start_date"]
    clock.on(day)

    response = gate(client, auth, plan["id"], "protected_weight_bearing", met=True, date=day)

    assert response.status_code == 422
    assert "no clinical review" in response.get_json()["detail"]


def test_a_protection_gate_met_early_is_accepted_with_a_warning(
    client: FlaskClient, auth: dict[str, str], clock: Clock, plan: dict[str, Any]
) -> None:
    start = date.fromisoformat(phase(plan, "non_weight_bearing")["start_date"])
    early = (start + timedelta(days=13)).isoformat()  # 14 days; the protocol's minimum is 21
    clock.on(early)

    response = gate(client, auth, plan["id"], "non_weight_bearing", met=True, date=early)

    assert response.status_code == 201, response.get_json()
    warning = response.get_json()["decision"]["warning"]
    assert warning and "14 days" in warning and "21 days" in warning
