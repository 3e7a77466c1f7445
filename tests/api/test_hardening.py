"""Inputs that once cost a 500 or reached what they should not: each reproduced as it was
found, then held to a clear 4xx problem or to the safe behaviour."""

from __future__ import annotations

import base64
import json

import pytest
from flask.testing import FlaskClient

from tests.api.conftest import EXAMPLE_PLAN
from tests.api.contract import Contract
from tests.clock import Clock


def _cursor(value: object) -> str:
    return base64.urlsafe_b64encode(json.dumps(value).encode()).decode().rstrip("=")


@pytest.mark.parametrize(
    "cursor",
    [
        "WyIyMDI2LTAxLTAxVDAwOjAwOjAwIiwgIngiXQ",  # as found: a naive datetime
        _cursor(["2026-01-01T00:00:00", "x"]),
        _cursor(["not a date", "x"]),
        _cursor(["2026-01-01T00:00:00+00:00"]),
        _cursor({"created": "2026-01-01T00:00:00+00:00"}),
    ],
)
def test_a_forged_cursor_is_a_422_not_a_500(
    client: FlaskClient, auth: dict[str, str], contract: Contract, cursor: str
) -> None:
    response = client.get(f"/v1/plans?cursor={cursor}", headers=auth)

    contract.check("GET", "/v1/plans", response)
    assert response.status_code == 422
    assert response.mimetype == "application/problem+json"
    assert "cursor" in response.get_json()["errors"]


@pytest.mark.parametrize(
    ("content_type", "status"),
    [
        ("application/json; charset=utf-16", 415),
        ("application/json; charset=latin-1", 415),
        ("application/problem+json", 415),
        ("application/json-patch+json", 415),
        ("text/plain", 415),
        ("application/json", 201),
        ("application/json; charset=utf-8", 201),
        ("Application/JSON", 201),
    ],
)
def test_only_json_in_utf8_is_read(
    client: FlaskClient, auth: dict[str, str], content_type: str, status: int
) -> None:
    body = json.dumps(EXAMPLE_PLAN)

    response = client.post("/v1/plans", data=body, headers={**auth, "Content-Type": content_type})

    assert response.status_code == status
    made = client.get("/v1/plans", headers=auth).get_json()["total"]
    if status == 415:
        assert response.get_json()["type"].endswith("unsupported_media_type")
        assert made == 0  # nothing was made
    else:
        assert made == 1


def _check_in_path(client: FlaskClient, auth: dict[str, str]) -> tuple[str, dict[str, object]]:
    plan = client.post("/v1/plans", json=EXAMPLE_PLAN, headers=auth).get_json()
    return f"/v1/plans/{plan['id']}/check-ins", plan


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ('{"notes": "\\ud800"}', "notes"),  # as found: a lone surrogate
        ('{"notes": "ok \\u0000 then"}', "notes"),
        ('{"notes": "x", "red_flags": ["\\udfff"]}', "red_flags.0"),
        ('{"\\ud800": 1}', "\ud800"),
    ],
)
def test_text_no_store_can_keep_is_a_422_and_nothing_is_recorded(
    client: FlaskClient, auth: dict[str, str], clock: Clock, body: str, field: str
) -> None:
    path, plan = _check_in_path(client, auth)
    session = plan["sessions"][0]  # type: ignore[index]
    clock.on(session["date"])
    body = body.replace("{", '{"session_uid": "' + session["uid"] + '", ', 1)
    headers = {**auth, "Content-Type": "application/json"}

    response = client.post(path, data=body, headers=headers)

    assert response.status_code == 422
    assert field in response.get_json()["errors"]
    history = client.get(f"/v1/plans/{plan['id']}/revisions", headers=auth).get_json()
    assert [r["revision"] for r in history["items"]] == [1]  # nothing was committed
    clean = client.post(path, json={"session_uid": session["uid"]}, headers=auth)
    assert clean.status_code == 201  # the same report without the bad text is recorded


@pytest.mark.parametrize(
    "body",
    ["[" * 10_000 + "]" * 10_000, '{"notes": ' + "9" * 5_000 + "}"],
    ids=["deep nesting", "a 5000-digit integer"],
)
def test_json_the_parser_cannot_take_is_a_400(
    client: FlaskClient, auth: dict[str, str], body: str
) -> None:
    response = client.post(
        "/v1/plans", data=body, headers={**auth, "Content-Type": "application/json"}
    )

    assert response.status_code == 400
    assert response.mimetype == "application/problem+json"


def test_a_nul_in_a_query_filter_is_a_422(
    client: FlaskClient, auth: dict[str, str], contract: Contract
) -> None:
    response = client.get("/v1/plans?athlete_reference=a%00b", headers=auth)

    contract.check("GET", "/v1/plans", response)

    assert response.status_code == 422
    assert "athlete_reference" in response.get_json()["errors"]


@pytest.mark.parametrize("host", ['a"b', "x/y", "a b", "evil.example"])
def test_a_host_that_is_not_trusted_is_a_400_not_a_500_or_a_reflected_link(
    client: FlaskClient, auth: dict[str, str], contract: Contract, host: str
) -> None:
    plan = client.post("/v1/plans", json=EXAMPLE_PLAN, headers=auth).get_json()
    html = "text/html"
    care_plan = f"/fhir/R4/CarePlan/{plan['id']}"

    page = client.get(plan["links"]["page"], headers={"Host": host})
    help_page = client.get(plan["links"]["feed"], headers={"Host": host, "Accept": html})
    fhir = client.get(care_plan, headers={**auth, "Host": host})
    metadata = client.get("/fhir/R4/metadata", headers={"Host": host})

    contract.check("GET", "/p/{token}", page)
    contract.check("GET", "/feeds/{token}.ics", help_page)
    contract.check("GET", "/fhir/R4/CarePlan/{plan_id}", fhir)
    contract.check("GET", "/fhir/R4/metadata", metadata)
    for response in (page, help_page, fhir, metadata):
        assert response.status_code == 400
        assert "//evil.example" not in response.get_data(as_text=True)  # no link to it


def test_trusted_hosts_default_to_local_names_the_bind_address_and_the_public_base() -> None:
    from planner.web import trusted_hosts

    assert trusted_hosts({}) == ["localhost", "127.0.0.1", "::1"]
    assert "10.1.2.3" in trusted_hosts({"BIND_HOST": "10.1.2.3"})
    assert "0.0.0.0" not in trusted_hosts({"BIND_HOST": "0.0.0.0"})
    assert "plans.clinic.example" in trusted_hosts(
        {"PUBLIC_BASE_URL": "https://plans.clinic.example/base"}
    )
    assert trusted_hosts({"TRUSTED_HOSTS": [".clinic.example"]}) == [".clinic.example"]


@pytest.mark.parametrize(
    ("field", "value"),
    [("pain_during", 0.9), ("pain_after", 2.9), ("pain_next_morning", 3.0), ("revision", 1.5)],
)
def test_a_fractional_number_in_a_check_in_is_a_422_not_floored(
    client: FlaskClient, auth: dict[str, str], clock: Clock, field: str, value: float
) -> None:
    path, plan = _check_in_path(client, auth)
    session = plan["sessions"][0]  # type: ignore[index]
    clock.on(session["date"])

    response = client.post(path, json={"session_uid": session["uid"], field: value}, headers=auth)

    assert response.status_code == 422
    assert field in response.get_json()["errors"]


@pytest.mark.parametrize(
    ("injury", "field"),
    [
        ({"mri_grade": 3.5, "grading_system": "nattiv"}, "mri_grade"),
        ({"fracture_line_pct": 20.5}, "fracture_line_pct"),
    ],
)
def test_a_fractional_number_in_a_plan_request_is_a_422(
    client: FlaskClient, auth: dict[str, str], injury: dict[str, object], field: str
) -> None:
    body = {**EXAMPLE_PLAN, "injury": {**EXAMPLE_PLAN["injury"], **injury}}

    response = client.post("/v1/plans", json=body, headers=auth)

    assert response.status_code == 422
    assert field in str(response.get_json()["errors"])


@pytest.mark.parametrize("revision", ["9223372036854775808", "2147483648"])
def test_a_revision_beyond_any_plan_is_a_422_not_a_500(
    client: FlaskClient, auth: dict[str, str], revision: str
) -> None:
    plan = client.post("/v1/plans", json=EXAMPLE_PLAN, headers=auth).get_json()

    response = client.get(f"/v1/plans/{plan['id']}?revision={revision}", headers=auth)

    assert response.status_code == 422
    assert "revision" in response.get_json()["errors"]


@pytest.mark.parametrize(
    "zone", ["localtime", "/etc/localtime", "posix/Europe/London", "EST5EDT,M3.2.0,M11.1.0"]
)
def test_only_iana_time_zone_names_are_taken(
    client: FlaskClient, auth: dict[str, str], zone: str
) -> None:
    response = client.post("/v1/plans", json={**EXAMPLE_PLAN, "timezone": zone}, headers=auth)

    assert response.status_code == 422
    assert "timezone" in response.get_json()["errors"]


def test_repeated_unmet_gates_cannot_grow_a_plan_without_limit(
    client: FlaskClient, auth: dict[str, str], clock: Clock
) -> None:
    """As found: 195 × "not met, extend 56 days" took one plan to 7,937 sessions ending in
    2057. Past the protocol's longest protection the answer is to re-plan or refer."""
    plan = client.post("/v1/plans", json=EXAMPLE_PLAN, headers=auth).get_json()
    path = f"/v1/plans/{plan['id']}/phases/non_weight_bearing/gate"
    review = next(p for p in plan["phases"] if p["key"] == "non_weight_bearing")["end_date"]
    clock.on(review)
    answers = [
        client.post(path, json={"met": False, "extend_days": 56, "date": review}, headers=auth)
        for _ in range(5)
    ]

    assert answers[-1].status_code == 422
    problem = answers[-1].get_json()
    assert "re-plan" in problem["detail"] and "extend_days" in problem["errors"]
    current = client.get(f"/v1/plans/{plan['id']}", headers=auth).get_json()
    assert len(current["sessions"]) <= 2 * len(plan["sessions"])
    assert current["phases"][-1]["end_date"] < "2028-01-01"


def test_a_gate_records_at_most_fifty_criteria(
    client: FlaskClient, auth: dict[str, str], clock: Clock
) -> None:
    plan = client.post("/v1/plans", json=EXAMPLE_PLAN, headers=auth).get_json()
    path = f"/v1/plans/{plan['id']}/phases/non_weight_bearing/gate"
    review = next(p for p in plan["phases"] if p["key"] == "non_weight_bearing")["end_date"]
    clock.on(review)
    many = [f"criterion {n}" for n in range(51)]

    refused = client.post(path, json={"met": True, "criteria": many}, headers=auth)
    accepted = client.post(path, json={"met": True, "criteria": many[:50]}, headers=auth)

    assert refused.status_code == 422 and "criteria" in refused.get_json()["errors"]
    assert accepted.status_code == 201


def test_a_post_that_takes_no_body_documents_what_a_bad_body_gets(
    client: FlaskClient, auth: dict[str, str], contract: Contract
) -> None:
    plan = client.post("/v1/plans", json=EXAMPLE_PLAN, headers=auth).get_json()
    path = f"/v1/plans/{plan['id']}/confirm"
    headers = {**auth, "Content-Type": "application/json"}

    nul = client.post(path, data='{"note": "a\\u0000b"}', headers=headers)
    text = client.post(path, data="confirm", headers={**auth, "Content-Type": "text/plain"})

    contract.check("POST", "/v1/plans/{plan_id}/confirm", nul)
    contract.check("POST", "/v1/plans/{plan_id}/confirm", text)
    assert (nul.status_code, text.status_code) == (422, 415)
