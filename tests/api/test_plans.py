"""The plans API through Flask's test client, every response checked against openapi.yaml."""

from __future__ import annotations

import copy
import itertools
import json
from datetime import UTC, datetime
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from icalendar import Calendar

from planner.store import Store
from planner.web import create_app
from tests.api.conftest import EXAMPLE_PLAN
from tests.api.contract import Contract
from tests.clock import Clock


def post_plan(
    client: FlaskClient, auth: dict[str, str], body: Any = None, contract: Contract | None = None
):  # type: ignore[no-untyped-def]
    response = client.post("/v1/plans", json=EXAMPLE_PLAN if body is None else body, headers=auth)
    if contract is not None:
        contract.check("POST", "/v1/plans", response)
    return response


def with_injury(**changes: Any) -> dict[str, Any]:
    body = copy.deepcopy(EXAMPLE_PLAN)
    body["injury"] = {"site": "femoral_neck", "type": "compression", **changes}
    return body


def plan_count(store: Store, organisation: str = "clinic-a") -> int:
    return store.list_plans(organisation, limit=1, offset=0)[1]


# ----------------------------------------------------------------------------- create/read


def test_create_plan_answers_201_with_location_and_a_complete_plan(
    client: FlaskClient, auth: dict[str, str], contract: Contract
) -> None:
    response = post_plan(client, auth, contract=contract)

    assert response.status_code == 201
    plan = response.get_json()
    assert response.headers["Location"] == f"/v1/plans/{plan['id']}"
    assert plan["pathway"] == "conservative"
    assert plan["protocol"]["id"] == "femoral-neck-compression-conservative"
    assert plan["protocol"]["version"] == "1.2.0"
    assert plan["protocol"]["references"]
    assert [p["key"] for p in plan["phases"]] == [
        "non_weight_bearing",
        "protected_weight_bearing",
        "walking",
        "graded_running",
        "return_to_training",
    ]
    assert plan["phases"][0]["start_date"] == "2026-11-21"
    assert {a["code"] for a in plan["alerts"]} == {"bone_health_referral", "avoid_nsaids"}
    assert plan["selection"]["rule"] == 4 and plan["selection"]["reasons"]
    assert plan["expected_return_to_run_date"] == next(
        s["date"] for s in plan["sessions"] if s["kind"] in ("run_walk", "run")
    )
    links = plan["links"]
    assert links["self"] == f"/v1/plans/{plan['id']}"
    assert links["ical"] == f"/v1/plans/{plan['id']}.ics"
    assert links["feed"].startswith("/feeds/") and links["feed"].endswith(".ics")
    assert links["page"].startswith("/p/") and links["busy_feed"] is None
    assert plan["feed"] == {"detail": "activity", "reminder_minutes": None, "busy": False}
    first_run = next(s for s in plan["sessions"] if s["kind"] == "run_walk")
    assert first_run["start"].startswith(first_run["date"] + "T07:00:00")
    assert first_run["steps"] == [
        {"activity": "walk", "minutes": 5},
        {"activity": "run", "minutes": 1},
    ]


def test_get_plan_returns_the_same_document(
    client: FlaskClient, auth: dict[str, str], contract: Contract
) -> None:
    created = post_plan(client, auth)
    path = created.headers["Location"]

    response = client.get(path, headers=auth)

    contract.check("GET", path, response)
    assert response.status_code == 200
    assert response.get_data() == created.get_data()
    assert response.headers["ETag"]


def test_get_plan_honours_if_none_match(client: FlaskClient, auth: dict[str, str]) -> None:
    path = post_plan(client, auth).headers["Location"]
    etag = client.get(path, headers=auth).headers["ETag"]

    response = client.get(path, headers={**auth, "If-None-Match": etag})

    assert response.status_code == 304
    assert response.headers["ETag"] == etag


def test_plan_survives_a_restart(database_url: str, tmp_path: Any) -> None:
    first = create_app({"TESTING": True, "DATABASE_URL": database_url})
    _, secret = first.extensions["planner"]["store"].create_key("k", "clinic-a")
    headers = {"Authorization": f"Bearer {secret}"}
    created = first.test_client().post("/v1/plans", json=EXAMPLE_PLAN, headers=headers)
    first.extensions["planner"]["store"].dispose()

    second = create_app({"TESTING": True, "DATABASE_URL": database_url})
    try:
        again = second.test_client().get(created.headers["Location"], headers=headers)
    finally:
        second.extensions["planner"]["store"].dispose()

    assert again.status_code == 200
    assert again.get_data() == created.get_data()


def test_ics_export_is_a_calendar_of_the_plan(
    client: FlaskClient, auth: dict[str, str], contract: Contract
) -> None:
    plan = post_plan(client, auth).get_json()
    path = plan["links"]["ical"]

    response = client.get(path, headers=auth)

    contract.check("GET", path, response)
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "text/calendar; charset=utf-8"
    assert response.headers["ETag"]
    calendar = Calendar.from_ical(response.get_data())
    uids = {str(event["UID"]) for event in calendar.walk("VEVENT")}
    assert {s["uid"] for s in plan["sessions"]} <= uids
    assert (
        client.get(path, headers={**auth, "If-None-Match": response.headers["ETag"]}).status_code
        == 304
    )


@pytest.mark.parametrize(
    ("injury", "triage", "alert"),
    [
        ({"type": "tension"}, "urgent_surgical_referral", "urgent_surgical_referral"),
        ({"fracture_line_pct": 55}, "urgent_surgical_referral", "urgent_surgical_referral"),
        ({"hip_effusion": True}, "urgent_surgical_referral", "urgent_surgical_referral"),
        ({"displaced": True}, "emergency_care", "emergency_care"),
        ({"can_bear_weight": False}, "emergency_care", "emergency_care"),
    ],
)
def test_referral_pathways_plan_no_walking_or_running(
    client: FlaskClient,
    auth: dict[str, str],
    contract: Contract,
    injury: dict[str, Any],
    triage: str,
    alert: str,
) -> None:
    response = post_plan(client, auth, with_injury(**injury), contract)

    assert response.status_code == 201
    plan = response.get_json()
    assert plan["pathway"] == "surgical_referral"
    assert plan["selection"]["triage"] == triage
    assert plan["alerts"][0]["code"] == alert and plan["alerts"][0]["severity"] == "urgent"
    assert plan["expected_return_to_run_date"] is None
    assert {s["kind"] for s in plan["sessions"]} == {"review"}
    assert plan["sessions"][0]["date"] == plan["start_date"]


def test_minimal_request_uses_the_documented_defaults(
    client: FlaskClient, auth: dict[str, str], contract: Contract
) -> None:
    body = {
        "diagnosis_date": "2026-11-20",
        "injury": {"site": "femoral_neck", "type": "compression"},
    }

    plan = post_plan(client, auth, body, contract).get_json()

    assert plan["start_date"] == "2026-11-20"
    assert plan["timezone"] == "UTC"
    assert plan["schedule"] == {"run_days": ["MO", "WE", "FR"], "session_time": None}
    assert all(s["start"] is None for s in plan["sessions"])
    assert plan["phases"][0]["days"] == 28  # oedema only: 4 weeks of protection


# ----------------------------------------------------------------------------- listing


def test_list_is_cursor_paged_newest_first_and_per_organisation(
    app: Flask,
    client: FlaskClient,
    auth: dict[str, str],
    other_auth: dict[str, str],
    contract: Contract,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    moments = iter(datetime(2026, 11, 23, 9, minute, tzinfo=UTC) for minute in range(3))
    monkeypatch.setattr(app.extensions["planner"]["planner"], "clock", lambda: next(moments))
    ids = [post_plan(client, auth).get_json()["id"] for _ in range(3)]

    first = client.get("/v1/plans?page_size=2", headers=auth)
    second = client.get(first.get_json()["links"]["next"], headers=auth)
    theirs = client.get("/v1/plans", headers=other_auth)

    for response in (first, second, theirs):
        contract.check("GET", "/v1/plans", response)
    page = first.get_json()
    assert page["total"] == 3 and page["page_size"] == 2
    assert "cursor=" in page["links"]["next"]
    assert [i["id"] for i in page["items"]] + [i["id"] for i in second.get_json()["items"]] == ids[
        ::-1
    ]
    assert second.get_json()["links"]["next"] is None
    assert theirs.get_json()["total"] == 0 and theirs.get_json()["items"] == []


def test_list_filters_by_athlete_external_id_and_status(
    client: FlaskClient, auth: dict[str, str], contract: Contract
) -> None:
    mine = post_plan(client, auth, {**EXAMPLE_PLAN, "external_id": "ehr-42"}).get_json()
    other = {**EXAMPLE_PLAN, "athlete": {"reference": "clinic-9999"}}
    cancelled = post_plan(client, auth, other).get_json()
    client.post(f"/v1/plans/{cancelled['id']}/cancel", json={}, headers=auth)

    by_external = client.get("/v1/plans?external_id=ehr-42", headers=auth)
    by_athlete = client.get("/v1/plans?athlete_reference=clinic-9999", headers=auth)
    by_status = client.get("/v1/plans?status=cancelled", headers=auth)

    for response in (by_external, by_athlete, by_status):
        contract.check("GET", "/v1/plans", response)
    assert [i["id"] for i in by_external.get_json()["items"]] == [mine["id"]]
    assert by_external.get_json()["items"][0]["external_id"] == "ehr-42"
    assert [i["id"] for i in by_athlete.get_json()["items"]] == [cancelled["id"]]
    assert [i["id"] for i in by_status.get_json()["items"]] == [cancelled["id"]]
    assert mine["external_id"] == "ehr-42"


def test_a_tampered_cursor_is_422(client: FlaskClient, auth: dict[str, str]) -> None:
    response = client.get("/v1/plans?cursor=not-a-cursor", headers=auth)

    assert response.status_code == 422
    assert "cursor" in response.get_json()["errors"]


def test_list_rejects_bad_paging(
    client: FlaskClient, auth: dict[str, str], contract: Contract
) -> None:
    response = client.get("/v1/plans?page_size=500", headers=auth)

    contract.check("GET", "/v1/plans", response)
    assert response.status_code == 422
    assert "page_size" in response.get_json()["errors"]


# ----------------------------------------------------------------------------- errors


def assert_problem(response: Any, status: int) -> dict[str, Any]:
    assert response.status_code == status
    assert response.mimetype == "application/problem+json"
    body = response.get_json(force=True)
    assert body["status"] == status and body["title"] and body["type"]
    return body


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Bearer sbk_nope_nope"}, {"Authorization": "Basic dXNlcjpwYXNz"}],
)
@pytest.mark.parametrize(
    ("method", "path"), [("GET", "/v1/plans"), ("POST", "/v1/plans"), ("GET", "/v1/protocols")]
)
def test_every_v1_route_needs_a_valid_key(
    client: FlaskClient, contract: Contract, headers: dict[str, str], method: str, path: str
) -> None:
    response = client.open(path, method=method, json=EXAMPLE_PLAN, headers=headers)

    contract.check(method, path, response)
    assert_problem(response, 401)
    assert response.headers["WWW-Authenticate"].startswith("Bearer")


def test_a_revoked_key_is_refused_at_once(client: FlaskClient, store: Store) -> None:
    record, secret = store.create_key("soon-revoked", "clinic-a")
    headers = {"Authorization": f"Bearer {secret}"}
    assert client.get("/v1/plans", headers=headers).status_code == 200

    store.revoke_key(str(record.id))

    assert_problem(client.get("/v1/plans", headers=headers), 401)


def test_unknown_plan_is_404(client: FlaskClient, auth: dict[str, str], contract: Contract) -> None:
    for path in ("/v1/plans/does-not-exist", "/v1/plans/does-not-exist.ics"):
        response = client.get(path, headers=auth)
        contract.check("GET", path, response)
        assert_problem(response, 404)


def test_another_organisations_plan_is_404(
    client: FlaskClient, auth: dict[str, str], other_auth: dict[str, str]
) -> None:
    path = post_plan(client, auth).headers["Location"]

    assert_problem(client.get(path, headers=other_auth), 404)
    assert_problem(client.get(path + ".ics", headers=other_auth), 404)


def test_malformed_json_is_400(
    client: FlaskClient, auth: dict[str, str], store: Store, contract: Contract
) -> None:
    response = client.post(
        "/v1/plans", data='{"diagnosis_date": ', content_type="application/json", headers=auth
    )

    contract.check("POST", "/v1/plans", response)
    assert_problem(response, 400)
    assert plan_count(store) == 0


def test_wrong_content_type_is_415(
    client: FlaskClient, auth: dict[str, str], store: Store, contract: Contract
) -> None:
    response = client.post(
        "/v1/plans", data=json.dumps(EXAMPLE_PLAN), content_type="text/plain", headers=auth
    )

    contract.check("POST", "/v1/plans", response)
    assert_problem(response, 415)
    assert plan_count(store) == 0


def test_oversized_body_is_413(
    client: FlaskClient, auth: dict[str, str], store: Store, contract: Contract
) -> None:
    body = {**EXAMPLE_PLAN, "athlete": {"name": "x" * 100_000}}

    response = post_plan(client, auth, body, contract)

    assert_problem(response, 413)
    assert plan_count(store) == 0


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({k: v for k, v in EXAMPLE_PLAN.items() if k != "diagnosis_date"}, "diagnosis_date"),
        ({**EXAMPLE_PLAN, "diagnosis_date": "20-11-2026"}, "diagnosis_date"),
        ({**EXAMPLE_PLAN, "surprise": 1}, "surprise"),
        ({**EXAMPLE_PLAN, "timezone": "Mars/Olympus_Mons"}, "timezone"),
        ({**EXAMPLE_PLAN, "start_date": "2026-11-01"}, "start_date"),
        ({**EXAMPLE_PLAN, "schedule": {"session_time": "7am"}}, "schedule.session_time"),
        ({**EXAMPLE_PLAN, "schedule": {"run_days": []}}, "schedule.run_days"),
        ({**EXAMPLE_PLAN, "schedule": {"run_days": ["XX"]}}, "schedule.run_days.0"),
        ({**EXAMPLE_PLAN, "risk_factors": ["smoker"]}, "risk_factors.0"),
        (with_injury(fracture_line=False, fracture_line_pct=30), "injury.fracture_line"),
        (with_injury(fracture_line=False, mri_grade=4), "injury.fracture_line"),
        (with_injury(mri_grade=7), "injury.mri_grade"),
        ({**EXAMPLE_PLAN, "injury": {"site": "femoral_neck"}}, "injury.type"),
        ({**EXAMPLE_PLAN, "injury": {"site": "tibia"}}, "injury.site"),
        ({**EXAMPLE_PLAN, "injury": {**EXAMPLE_PLAN["injury"], "colour": "red"}}, "injury.colour"),
        ([EXAMPLE_PLAN], "_schema"),
    ],
)
def test_invalid_input_is_422_with_field_errors_and_stores_nothing(
    client: FlaskClient,
    auth: dict[str, str],
    store: Store,
    contract: Contract,
    body: Any,
    field: str,
) -> None:
    response = post_plan(client, auth, body, contract)

    problem = assert_problem(response, 422)
    assert field in problem["errors"], problem
    assert plan_count(store) == 0


def test_unknown_route_is_a_problem_too(client: FlaskClient, auth: dict[str, str]) -> None:
    assert_problem(client.get("/v1/nothing-here", headers=auth), 404)
    assert_problem(client.delete("/v1/plans", headers=auth), 405)


def test_a_failure_while_storing_keeps_nothing(
    app: Flask,
    client: FlaskClient,
    auth: dict[str, str],
    store: Store,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    planner = app.extensions["planner"]["planner"]
    monkeypatch.setattr(planner, "new_id", lambda: "fixed-id")
    assert post_plan(client, auth).status_code == 201

    response = post_plan(client, auth)  # the same id again: the insert fails

    assert_problem(response, 500)
    assert plan_count(store) == 1


# ----------------------------------------------------------------------------- health


def test_healthz_needs_no_key(client: FlaskClient, contract: Contract) -> None:
    response = client.get("/healthz")

    contract.check("GET", "/healthz", response)
    assert response.status_code == 200
    assert response.get_json()["status"] == "ok"
    assert response.get_json()["protocols"] >= 2


def test_the_plan_etag_changes_exactly_when_the_served_bytes_do(
    client: FlaskClient, auth: dict[str, str], clock: Clock
) -> None:
    """The ETag names (plan, revision, service version) plus what serving adds, not the
    bytes themselves: check that it still pairs with the body one to one."""
    plan = client.post("/v1/plans", json=EXAMPLE_PLAN, headers=auth).get_json()
    path = f"/v1/plans/{plan['id']}"
    first_session = plan["sessions"][0]["uid"]
    clock.on(plan["sessions"][0]["date"])
    writes = [
        ("PUT", f"{path}/feed", {"detail": "full"}),
        ("POST", f"{path}/check-ins", {"session_uid": first_session}),
        ("POST", f"{path}/feed-token", None),
        ("PUT", f"{path}/feed", {"detail": "full", "busy": True}),
        ("POST", f"{path}/confirm", None),
        ("DELETE", f"{path}/feed-token", None),
    ]
    seen: dict[bytes, str] = {}
    for method, url, body in [("GET", path, None), *writes]:
        if method != "GET":
            answer = client.open(url, method=method, json=body, headers=auth)
            assert answer.status_code < 300, answer.get_json()
        for _ in range(2):
            response = client.get(path, headers=auth)
            seen.setdefault(response.get_data(), response.headers["ETag"])
            assert seen[response.get_data()] == response.headers["ETag"]
    assert len(seen) == len(writes) + 1  # every write changed the body …
    assert len(set(seen.values())) == len(seen)  # … and the ETag with it


@pytest.mark.parametrize(
    "settings",
    [
        {},
        {"detail": "full"},
        {"detail": "activity", "reminder_minutes": 30, "busy": True},
        {"reminder_minutes": None, "busy": False},
    ],
)
def test_the_compiled_feed_settings_dumper_equals_marshmallow(settings: dict[str, Any]) -> None:
    from planner.schemas.api import FeedSettingsSchema
    from planner.service.rendering import dump_feed_settings

    schema = FeedSettingsSchema()
    loaded = schema.load(settings)
    assert dump_feed_settings(loaded) == schema.dump(loaded)
    assert list(dump_feed_settings(loaded)) == list(schema.dump(loaded))  # key order too


# ----------------------------------------------------------------------------- clinical safety


def _running_minutes(session: dict[str, Any]) -> int:
    if session["kind"] not in ("run_walk", "run"):
        return 0
    steps = session.get("steps") or []
    if steps:
        run = sum(s["minutes"] for s in steps if s["activity"] == "run")
        return run * (session.get("repeat") or 1)
    return int(session["duration_min"] or 0)


@pytest.mark.parametrize(
    "run_days",
    [["MO", "TU", "WE", "TH", "FR", "SA", "SU"], ["MO", "WE", "FR", "SU"], ["SA", "SU"]],
)
def test_weekly_running_volume_rises_at_most_10_percent_whatever_the_run_days(
    client: FlaskClient, auth: dict[str, str], run_days: list[str]
) -> None:
    body = {**copy.deepcopy(EXAMPLE_PLAN), "schedule": {"run_days": run_days}}
    response = post_plan(client, auth, body)

    assert response.status_code == 201, response.get_json()
    plan = response.get_json()
    build = next(p for p in plan["phases"] if p["key"] == "return_to_training")
    first = datetime.fromisoformat(build["start_date"]).date()
    weeks: dict[int, int] = {}
    for s in plan["sessions"]:
        if s["phase"] == "return_to_training" and _running_minutes(s):
            week = (datetime.fromisoformat(s["date"]).date() - first).days // 7
            weeks[week] = weeks.get(week, 0) + _running_minutes(s)
    volumes = [weeks[w] for w in sorted(weeks)]
    assert len(volumes) == 8, volumes
    assert all(after * 10 <= before * 11 for before, after in itertools.pairwise(volumes)), volumes
    if len(run_days) == 7:
        assert volumes == [90, 99, 108, 117, 126, 135, 135, 135]


@pytest.mark.parametrize(
    ("now", "timezone", "diagnosis", "status"),
    [
        (datetime(2026, 11, 21, 9, tzinfo=UTC), "UTC", "2026-11-22", 422),
        (datetime(2026, 11, 21, 9, tzinfo=UTC), "UTC", "2026-11-21", 201),  # today is fine
        # 03:00 UTC on the 21st is still the 20th in New York: the plan's local date counts.
        (datetime(2026, 11, 21, 3, tzinfo=UTC), "America/New_York", "2026-11-21", 422),
        (datetime(2026, 11, 21, 3, tzinfo=UTC), "UTC", "2026-11-21", 201),
        (datetime(2026, 11, 21, 12, tzinfo=UTC), "Pacific/Auckland", "2026-11-22", 201),
    ],
)
def test_a_diagnosis_date_in_the_future_is_422(
    client: FlaskClient,
    auth: dict[str, str],
    store: Store,
    clock: Clock,
    now: datetime,
    timezone: str,
    diagnosis: str,
    status: int,
) -> None:
    clock.now = now
    body = {**copy.deepcopy(EXAMPLE_PLAN), "timezone": timezone, "diagnosis_date": diagnosis}
    body["start_date"] = diagnosis

    response = post_plan(client, auth, body)

    assert response.status_code == status, response.get_json()
    if status == 422:
        problem = assert_problem(response, 422)
        assert list(problem["errors"]) == ["diagnosis_date"], problem
        assert f"{diagnosis} is in the future" in problem["errors"]["diagnosis_date"][0]
        assert plan_count(store) == 0


def test_a_start_date_in_the_future_is_fine(
    client: FlaskClient, auth: dict[str, str], clock: Clock
) -> None:
    body = {**copy.deepcopy(EXAMPLE_PLAN), "start_date": "2027-01-04"}
    response = post_plan(client, auth, body)
    assert response.status_code == 201, response.get_json()
