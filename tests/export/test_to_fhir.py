"""The FHIR R4 export: every document validates against fhir.resources' R4B models
(structure and datatypes), and — because those models accept any code — every coded
value is checked here against R4's required value sets and code-system rules. Also:
the same input gives the same dicts, the narrative is well-formed, escaped XHTML, and
timed sessions keep the runner's UTC offset."""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import pytest
from fhir.resources.R4B.capabilitystatement import CapabilityStatement
from fhir.resources.R4B.careplan import CarePlan
from fhir.resources.R4B.operationoutcome import OperationOutcome
from fhir.resources.R4B.plandefinition import PlanDefinition

from planner.domain import Athlete, Plan, PlanRequest, Preferences, classify, make_plan
from planner.domain.model import PlanStatus, SessionKind, SessionStatus
from planner.export.to_fhir import (
    ICD10CM,
    SESSION_KIND_SYSTEM,
    SNOMED,
    capability_statement,
    care_plan,
    operation_outcome,
    plan_definition,
    site_name,
)
from tests.builders import shipped_catalog

PLAN_ID = "3f2c0c8e-0000-4000-8000-000000000001"
CREATED = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
BASE = "https://planner.example.org"
CATALOG = shipped_catalog()

# R4 value sets, copied from the specification (not from the module under test).
#: http://hl7.org/fhir/R4/valueset-request-status.html
REQUEST_STATUS = {
    "draft",
    "active",
    "on-hold",
    "revoked",
    "completed",
    "entered-in-error",
    "unknown",
}
#: http://hl7.org/fhir/R4/valueset-care-plan-intent.html
CARE_PLAN_INTENT = {"proposal", "plan", "order", "option"}
#: http://hl7.org/fhir/R4/valueset-care-plan-activity-status.html
ACTIVITY_STATUS = {
    "not-started", "scheduled", "in-progress", "on-hold", "completed", "cancelled",
    "stopped", "unknown", "entered-in-error",
}  # fmt: skip
#: http://hl7.org/fhir/R4/valueset-care-plan-activity-kind.html (resource types)
ACTIVITY_KIND = {
    "Appointment", "CommunicationRequest", "DeviceRequest", "MedicationRequest",
    "NutritionOrder", "Task", "ServiceRequest", "VisionPrescription",
}  # fmt: skip
#: http://hl7.org/fhir/R4/valueset-condition-clinical.html / -ver-status / -category
CONDITION_CLINICAL = (
    "http://terminology.hl7.org/CodeSystem/condition-clinical",
    {"active", "recurrence", "relapse", "inactive", "remission", "resolved"},
)
CONDITION_VER_STATUS = (
    "http://terminology.hl7.org/CodeSystem/condition-ver-status",
    {"unconfirmed", "provisional", "differential", "confirmed", "refuted", "entered-in-error"},
)
CONDITION_CATEGORY = (
    "http://terminology.hl7.org/CodeSystem/condition-category",
    {"problem-list-item", "encounter-diagnosis"},
)
#: http://hl7.org/fhir/R4/codesystem-plan-definition-type.html
PLAN_DEFINITION_TYPE = (
    "http://terminology.hl7.org/CodeSystem/plan-definition-type",
    {"order-set", "clinical-protocol", "eca-rule", "workflow-definition"},
)
#: http://hl7.org/fhir/R4/valueset-action-relationship-type.html
ACTION_RELATIONSHIP = {
    "before-start", "before", "before-end", "concurrent-with-start", "concurrent",
    "concurrent-with-end", "after-start", "after", "after-end",
}  # fmt: skip
#: http://hl7.org/fhir/R4/valueset-issue-type.html
ISSUE_TYPE = {
    "invalid", "structure", "required", "value", "invariant", "security", "login",
    "unknown", "expired", "forbidden", "suppressed", "processing", "not-supported",
    "duplicate", "multiple-matches", "not-found", "deleted", "too-long", "code-invalid",
    "extension", "too-costly", "business-rule", "conflict", "transient", "lock-error",
    "no-store", "exception", "timeout", "incomplete", "throttled", "informational",
}  # fmt: skip
#: http://hl7.org/fhir/R4/valueset-type-restful-interaction.html
TYPE_RESTFUL_INTERACTION = {
    "read", "vread", "update", "patch", "delete", "history-instance", "history-type",
    "create", "search-type",
}  # fmt: skip
#: XHTML elements FHIR narrative allows (R4 Narrative, txt-1).
NARRATIVE_ELEMENTS = {
    "a", "abbr", "acronym", "b", "big", "blockquote", "br", "caption", "cite", "code",
    "col", "colgroup", "dd", "dfn", "div", "dl", "dt", "em", "h1", "h2", "h3", "h4", "h5",
    "h6", "hr", "i", "img", "li", "ol", "p", "pre", "q", "samp", "small", "span", "strong",
    "sub", "sup", "table", "tbody", "td", "tfoot", "th", "thead", "tr", "tt", "ul", "var",
}  # fmt: skip
UCUM = "http://unitsofmeasure.org"
UCUM_TIME_CODES = {"s", "min", "h", "d", "wk", "mo", "a"}
XHTML = "{http://www.w3.org/1999/xhtml}"

FHIR_ID = re.compile(r"^[A-Za-z0-9\-.]{1,64}$")
FHIR_NAME = re.compile(r"^[A-Z]([A-Za-z0-9_]){0,254}$")
#: FHIR instant: seconds and a mandatory offset.
INSTANT = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$")
DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
#: ICD-10-CM: letter, two characters, then a dot and 1–4 more (7th character included).
ICD10CM_CODE = re.compile(r"^[A-TV-Z][0-9][0-9AB]\.[0-9A-Z]{1,4}$")


# --------------------------------------------------------------------------- plans


def make(
    *,
    injury: dict[str, Any] | None = None,
    athlete: Athlete | None = None,
    session_time: str | None = "07:00",
    timezone_name: str = "America/New_York",
) -> Plan:
    fields = {"site": "femoral_neck", "type": "compression", "laterality": "left"}
    fields.update(injury if injury is not None else {"fracture_line_pct": 20})
    return make_plan(
        PlanRequest(
            diagnosis_date=date(2026, 11, 20),
            injury=classify(**fields),
            athlete=athlete
            if athlete is not None
            else Athlete(reference="clinic-1234", name="A. Runner"),
            preferences=Preferences(session_time=session_time, timezone=timezone_name),
        ),
        CATALOG,
        plan_id=PLAN_ID,
        created_at=CREATED,
    )


PLANS = {
    "conservative": lambda: make(),
    "oedema_only": lambda: make(injury={}, session_time=None, timezone_name="UTC"),
    "tension_surgical_referral": lambda: make(
        injury={"type": "tension", "laterality": "right", "mri_grade": 4}
    ),
    "emergency_displaced": lambda: make(injury={"displaced": True}),
    "no_athlete_reference": lambda: make(athlete=Athlete(), injury={"laterality": None}),
    "name_without_reference": lambda: make(athlete=Athlete(name="A. Runner")),
}


@pytest.fixture(params=sorted(PLANS))
def plan(request: pytest.FixtureRequest) -> Plan:
    return PLANS[request.param]()


# ------------------------------------------------------------------------ helpers


def walk(node: Any, path: str = "$") -> Iterator[tuple[str, Any]]:
    """Every (path, value) in a JSON document, depth first."""
    yield path, node
    if isinstance(node, dict):
        for key, value in node.items():
            yield from walk(value, f"{path}.{key}")
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from walk(value, f"{path}[{index}]")


def codings(document: dict[str, Any]) -> list[dict[str, Any]]:
    return [v for _, v in walk(document) if isinstance(v, dict) and "system" in v and "code" in v]


def verhoeff_ok(number: str) -> bool:
    """SNOMED CT identifiers end with a Verhoeff check digit."""
    d = [
        [0, 1, 2, 3, 4, 5, 6, 7, 8, 9], [1, 2, 3, 4, 0, 6, 7, 8, 9, 5],
        [2, 3, 4, 0, 1, 7, 8, 9, 5, 6], [3, 4, 0, 1, 2, 8, 9, 5, 6, 7],
        [4, 0, 1, 2, 3, 9, 5, 6, 7, 8], [5, 9, 8, 7, 6, 0, 4, 3, 2, 1],
        [6, 5, 9, 8, 7, 1, 0, 4, 3, 2], [7, 6, 5, 9, 8, 2, 1, 0, 4, 3],
        [8, 7, 6, 5, 9, 3, 2, 1, 0, 4], [9, 8, 7, 6, 5, 4, 3, 2, 1, 0],
    ]  # fmt: skip
    p = [
        [0, 1, 2, 3, 4, 5, 6, 7, 8, 9], [1, 5, 7, 6, 2, 8, 3, 0, 9, 4],
        [5, 8, 0, 3, 7, 9, 6, 1, 4, 2], [8, 9, 1, 6, 0, 4, 3, 5, 2, 7],
        [9, 4, 5, 3, 1, 2, 6, 8, 7, 0], [4, 2, 8, 6, 5, 7, 3, 9, 0, 1],
        [2, 7, 9, 3, 8, 0, 6, 4, 1, 5], [7, 0, 4, 6, 9, 1, 3, 2, 5, 8],
    ]  # fmt: skip
    check = 0
    for i, digit in enumerate(reversed(number)):
        check = d[check][p[i % 8][int(digit)]]
    return check == 0


def assert_generic_rules(document: dict[str, Any]) -> None:
    """Rules the library does not enforce: ele-1 (no empty values), absolute code
    system URIs, well-formed codes, SNOMED identifiers, narrative XHTML, Durations."""
    for path, value in walk(document):
        assert value is not None, path
        assert value not in ("", [], {}), f"{path} is empty (ele-1)"
        if isinstance(value, str):
            assert value == value.strip() or "\n" in value, f"{path} has stray whitespace"
    for coding in codings(document):
        parts = urlsplit(coding["system"])
        assert parts.scheme in {"http", "https", "urn"}, coding
        assert parts.netloc or parts.scheme == "urn", coding
        assert isinstance(coding["code"], str) and coding["code"].strip() == coding["code"]
        assert " " not in coding["code"] or coding["system"] != SNOMED, coding
        if coding["system"] == SNOMED:
            assert coding["code"].isdigit() and 6 <= len(coding["code"]) <= 18, coding
            assert coding["code"][-3:-1] == "00", f"not a concept id: {coding}"
            assert verhoeff_ok(coding["code"]), f"bad SNOMED check digit: {coding}"
        if coding["system"] == ICD10CM:
            assert ICD10CM_CODE.match(coding["code"]), coding
        if coding["system"] == UCUM:
            assert coding["code"] in UCUM_TIME_CODES, coding
            assert coding["unit"] == coding["code"] and coding["value"] > 0, coding
    for path, value in walk(document):
        if path.endswith(".text.div"):
            assert_narrative(value)


def assert_narrative(div: str) -> ET.Element:
    root = ET.fromstring(div)  # well-formed XML or it raises
    assert root.tag == f"{XHTML}div"
    assert div.startswith('<div xmlns="http://www.w3.org/1999/xhtml">')
    for element in root.iter():
        assert element.tag.startswith(XHTML), element.tag
        assert element.tag.removeprefix(XHTML) in NARRATIVE_ELEMENTS, element.tag
        assert not element.attrib, element.attrib
    assert "".join(root.itertext()).strip(), "narrative has no text (txt-2)"
    return root


def sessions_and_activities(
    plan_: Plan, document: dict[str, Any]
) -> list[tuple[Any, dict[str, Any]]]:
    activities = document["activity"][len(plan_.phases) :]
    assert len(activities) == len(plan_.sessions)
    return list(zip(plan_.sessions, activities, strict=True))


# ------------------------------------------------------------------- CarePlan


def test_care_plan_validates_with_r4b_models_and_r4_codes(plan: Plan) -> None:
    document = care_plan(plan, base_url=BASE)
    CarePlan.model_validate(document)
    assert_generic_rules(document)

    assert document["resourceType"] == "CarePlan"
    assert document["id"] == plan.id and FHIR_ID.match(plan.id)
    assert document["meta"] == {"versionId": "1", "lastUpdated": "2026-11-23T09:00:00+00:00"}
    assert document["text"]["status"] == "generated"
    assert document["status"] in REQUEST_STATUS and document["status"] == "active"
    assert document["intent"] in CARE_PLAN_INTENT and document["intent"] == "proposal"
    assert INSTANT.match(document["created"])
    assert document["period"] == {
        "start": plan.start_date.isoformat(),
        "end": plan.end_date.isoformat(),
    }
    for activity in document["activity"]:
        detail = activity["detail"]
        assert detail["status"] in ACTIVITY_STATUS
        assert detail.get("kind", "Appointment") in ACTIVITY_KIND
        assert detail["description"]
    assert len(document["activity"]) == len(plan.phases) + len(plan.sessions)


def test_contained_condition_codes(plan: Plan) -> None:
    document = care_plan(plan)
    (injury,) = document["contained"]
    assert injury["resourceType"] == "Condition" and injury["id"] == "injury"
    assert document["addresses"][0]["reference"] == "#injury"  # dom-3: it is referenced
    assert "meta" not in injury and "contained" not in injury  # dom-4, dom-2
    for element, (system, codes) in (
        ("clinicalStatus", CONDITION_CLINICAL),
        ("verificationStatus", CONDITION_VER_STATUS),
    ):
        (coding,) = injury[element]["coding"]
        assert coding["system"] == system and coding["code"] in codes
    assert injury["clinicalStatus"]["coding"][0]["code"] == "active"
    assert injury["verificationStatus"]["coding"][0]["code"] == "confirmed"
    (category,) = injury["category"][0]["coding"]
    assert category["system"] == CONDITION_CATEGORY[0]
    assert category["code"] == "encounter-diagnosis"
    assert injury["onsetDateTime"] == injury["recordedDate"] == "2026-11-20"
    assert injury["subject"] == document["subject"]
    assert injury["subject"] is not document["subject"]  # no shared mutable state

    icd = [c for c in injury["code"]["coding"] if c["system"] == ICD10CM]
    assert len(icd) == 1 and icd[0]["code"].startswith("M84.35")
    sixth = {"right": "1", "left": "2", None: "3"}[
        plan.request.injury.laterality and plan.request.injury.laterality.value
    ]
    assert icd[0]["code"] == f"M84.35{sixth}A"
    snomed = [c["code"] for c in injury["code"]["coding"] if c["system"] == SNOMED]
    assert snomed == (["704067000"] if plan.request.injury.fracture_line else [])
    laterality = plan.request.injury.laterality
    site_text = injury["bodySite"][0]["text"]
    if laterality is not None:
        assert site_text.startswith(f"{laterality.value.capitalize()} femoral neck")
    assert "MRI findings" in injury["note"][0]["text"]


def test_mri_findings_are_in_the_condition_note() -> None:
    document = care_plan(make(injury={"fracture_line_pct": 30, "mri_grade": 4}))
    note = document["contained"][0]["note"][0]["text"]
    assert "30% of neck width" in note and "MRI grade 4" in note and "side: left" in note
    assert "compression" in note
    oedema = care_plan(make(injury={}))["contained"][0]
    assert "no fracture line" in oedema["note"][0]["text"]
    assert "marrow oedema" in oedema["code"]["text"]


def test_subject_reference() -> None:
    with_ref = care_plan(make(), subject_system="https://clinic.example/patients")
    assert with_ref["subject"] == {
        "type": "Patient",
        "identifier": {"system": "https://clinic.example/patients", "value": "clinic-1234"},
        "display": "A. Runner",
    }
    assert care_plan(make(athlete=Athlete(name="A. Runner")))["subject"] == {"display": "A. Runner"}
    anonymous = care_plan(make(athlete=Athlete()))
    assert set(anonymous["subject"]) == {"display"}
    CarePlan.model_validate(anonymous)


def test_category_is_honest_about_the_pathway() -> None:
    conservative = care_plan(make())["category"]
    referral = care_plan(make(injury={"type": "tension"}))["category"]
    local = "https://stride-back.dev/fhir/CodeSystem/care-plan-category"
    assert conservative[0]["coding"][0] == {
        "system": local,
        "code": "return-to-run",
        "display": "Return-to-run plan",
    }
    assert conservative[1]["coding"][0]["code"] == "773513001"  # physiotherapy care plan
    assert [c["coding"][0]["system"] for c in referral] == [local]


def test_instantiates_canonical_is_the_plan_definition_url_with_version(plan: Plan) -> None:
    document = care_plan(plan, base_url=BASE)
    protocol = CATALOG.get(plan.protocol.id)
    definition = plan_definition(protocol, base_url=BASE)
    (canonical,) = document["instantiatesCanonical"]
    url, version = canonical.split("|")
    assert url == definition["url"] == f"{BASE}/fhir/R4/PlanDefinition/{protocol.id}"
    assert version == definition["version"] == plan.protocol.version
    assert care_plan(plan, base_url=BASE + "/")["instantiatesCanonical"] == [canonical]
    assert care_plan(plan)["instantiatesCanonical"] == [
        f"/fhir/R4/PlanDefinition/{protocol.id}|{protocol.version}"
    ]


def test_phase_activities_are_dated_and_contiguous(plan: Plan) -> None:
    document = care_plan(plan)
    phases = document["activity"][: len(plan.phases)]
    for phase, activity in zip(plan.phases, phases, strict=True):
        detail = activity["detail"]
        assert "kind" not in detail
        assert detail["code"]["text"] == phase.title
        assert detail["scheduledPeriod"] == {
            "start": phase.start_date.isoformat(),
            "end": phase.end_date.isoformat(),  # inclusive, as FHIR periods are
        }
        assert detail["status"] == "scheduled"
        for goal in phase.goals:
            assert goal in detail["description"]
        for criterion in phase.advance_criteria:
            assert criterion in detail["description"]


def test_session_activities(plan: Plan) -> None:
    document = care_plan(plan)
    for session, activity in sessions_and_activities(plan, document):
        detail = activity["detail"]
        (coding,) = detail["code"]["coding"]
        assert coding["system"] == SESSION_KIND_SYSTEM and coding["code"] == session.kind.value
        assert detail["code"]["text"] == session.title
        assert detail["status"] == "scheduled"
        assert detail["description"].startswith(session.title)
        if session.notes:
            assert session.notes in detail["description"]
        for criterion in session.criteria:
            assert criterion in detail["description"]
        if session.kind is SessionKind.REVIEW:
            assert detail["kind"] == "Appointment"
        else:
            assert "kind" not in detail
        if session.start is None:
            assert detail["scheduledTiming"] == {"event": [session.date.isoformat()]}
            assert "scheduledPeriod" not in detail
        else:
            assert "scheduledTiming" not in detail


def test_timed_sessions_keep_their_utc_offset_across_dst() -> None:
    plan = make()
    document = care_plan(plan)
    offsets = set()
    timed = 0
    for session, activity in sessions_and_activities(plan, document):
        if session.start is None:
            continue
        timed += 1
        period = activity["detail"]["scheduledPeriod"]
        assert INSTANT.match(period["start"]) and INSTANT.match(period["end"])
        start = datetime.fromisoformat(period["start"])
        assert start == session.start and start.utcoffset() == session.start.utcoffset()
        assert period["start"] == session.start.isoformat(timespec="seconds")  # local, not UTC
        assert datetime.fromisoformat(period["end"]) - start == timedelta(
            minutes=session.duration_min or 0
        )
        offsets.add(period["start"][-6:])
    assert timed > 0
    assert offsets == {"-05:00", "-04:00"}  # winter and summer in New York
    times = {
        a["detail"]["scheduledPeriod"]["start"][10:]
        for a in document["activity"][len(plan.phases) :]
        if "scheduledPeriod" in a["detail"]
    }
    assert {"T07:00:00-05:00", "T07:00:00-04:00"} <= times  # 07:00 local either side of DST


def test_interval_steps_are_spelled_out() -> None:
    plan = make()
    document = care_plan(plan)
    run_walks = [
        (s, a) for s, a in sessions_and_activities(plan, document) if s.kind is SessionKind.RUN_WALK
    ]
    session, activity = run_walks[0]
    text = activity["detail"]["description"]
    for step in session.steps:
        assert f"{step.activity} {step.minutes} min" in text.lower()
    if session.repeat and session.repeat > 1:
        assert f"repeat {session.repeat} times" in text


def test_status_of_stopped_and_cancelled_plans() -> None:
    plan = make()
    cutoff = plan.phases[1].start_date
    stopped = replace(
        plan,
        status=PlanStatus.STOPPED,
        sessions=tuple(
            replace(s, status=SessionStatus.CANCELLED)
            if s.date > cutoff and s.kind.is_running
            else s
            for s in plan.sessions
        ),
    )
    document = care_plan(stopped)
    assert document["status"] == "on-hold"
    for session, activity in sessions_and_activities(stopped, document):
        expected = "cancelled" if session.status is SessionStatus.CANCELLED else "scheduled"
        assert activity["detail"]["status"] == expected
    phase_statuses = {a["detail"]["status"] for a in document["activity"][: len(plan.phases)]}
    assert phase_statuses == {"on-hold"}

    progress = replace(
        plan.progress,
        cancelled_on=cutoff,
        frozen_ends=((plan.phases[0].key, plan.phases[0].end_date),),
    )
    cancelled = replace(plan, status=PlanStatus.CANCELLED, progress=progress)
    document = care_plan(cancelled)
    CarePlan.model_validate(document)
    assert document["status"] == "revoked"
    assert [a["detail"]["status"] for a in document["activity"][: len(plan.phases)]] == [
        "completed",
        "stopped",
        *["cancelled"] * (len(plan.phases) - 2),
    ]


def test_unknown_statuses_map_to_unknown_not_to_an_invalid_code() -> None:
    plan = make()
    odd = replace(
        plan,
        status="archived",  # type: ignore[arg-type]
        sessions=(replace(plan.sessions[0], status="missed"), *plan.sessions[1:]),  # type: ignore[arg-type]
    )
    document = care_plan(odd)
    assert document["status"] == "unknown"
    assert document["activity"][len(plan.phases)]["detail"]["status"] == "unknown"


def test_intent() -> None:
    assert care_plan(make(), intent="plan")["intent"] == "plan"
    with pytest.raises(ValueError, match="intent"):
        care_plan(make(), intent="directive")


def test_naive_timestamps_are_taken_as_utc() -> None:
    plan = replace(make(), updated_at=datetime(2026, 11, 24, 10, 30, 15, 123456))
    assert care_plan(plan)["meta"]["lastUpdated"] == "2026-11-24T10:30:15+00:00"


def test_narrative_is_wellformed_escaped_and_summarises_the_plan(plan: Plan) -> None:
    root = assert_narrative(care_plan(plan)["text"]["div"])
    text = " ".join(root.itertext())
    assert plan.protocol.title in text
    for phase in plan.phases:
        assert phase.title in text
        assert phase.start_date.isoformat() in text and phase.end_date.isoformat() in text
    assert "Next steps" in text
    if plan.expected_return_to_run_date is None:
        assert "No running is planned" in text
    else:
        assert plan.expected_return_to_run_date.isoformat() in text
    for alert in plan.alerts:
        if alert.severity.value == "urgent":
            assert alert.message in text


def test_narrative_escapes_markup() -> None:
    plan = make()
    nasty = 'A <script>alert("x")</script> & <b>bold</b> plan'
    plan = replace(
        plan,
        protocol=replace(plan.protocol, title=nasty),
        phases=(replace(plan.phases[0], title="Phase <1> & co"), *plan.phases[1:]),
    )
    div = care_plan(plan)["text"]["div"]
    root = assert_narrative(div)
    assert "<script>" not in div and "&lt;script&gt;" in div
    assert nasty in "".join(root.itertext())
    assert "Phase <1> & co" in "".join(root.itertext())
    assert not [e for e in root.iter() if e.tag == f"{XHTML}script" or e.text == "bold"]


def test_same_input_gives_equal_documents() -> None:
    for build in PLANS.values():
        first, second = build(), build()
        assert care_plan(first, base_url=BASE) == care_plan(second, base_url=BASE)
        assert json.dumps(care_plan(first)) == json.dumps(care_plan(second))
    for protocol in CATALOG:
        assert json.dumps(plan_definition(protocol)) == json.dumps(plan_definition(protocol))
    assert capability_statement(software_version="1") == capability_statement(software_version="1")


def test_output_is_plain_json() -> None:
    document = care_plan(make(), base_url=BASE)
    assert json.loads(json.dumps(document)) == document


# ------------------------------------------------------------- PlanDefinition


@pytest.fixture(params=sorted(p.id for p in CATALOG))
def protocol(request: pytest.FixtureRequest) -> Any:
    return CATALOG.get(request.param)


def test_plan_definition_validates_and_uses_r4_codes(protocol: Any) -> None:
    document = plan_definition(protocol, base_url=BASE)
    PlanDefinition.model_validate(document)
    assert_generic_rules(document)
    assert document["id"] == protocol.id and FHIR_ID.match(protocol.id)
    assert document["url"] == f"{BASE}/fhir/R4/PlanDefinition/{protocol.id}"
    assert document["version"] == protocol.version
    assert FHIR_NAME.match(document["name"])
    assert document["title"] == protocol.title
    assert document["status"] == "active"
    assert document["description"] == protocol.summary
    (coding,) = document["type"]["coding"]
    assert coding["system"] == PLAN_DEFINITION_TYPE[0]
    assert coding["code"] in PLAN_DEFINITION_TYPE[1] and coding["code"] == "clinical-protocol"


def test_plan_definition_actions_follow_the_phases(protocol: Any) -> None:
    document = plan_definition(protocol)
    actions = document["action"]
    goal_ids = [goal["id"] for goal in document["goal"]]
    assert len(goal_ids) == len(set(goal_ids)) == sum(len(p.goals) for p in protocol.phases)
    assert [g["description"]["text"] for g in document["goal"]] == [
        text for phase in protocol.phases for text in phase.goals
    ]
    assert [a["title"] for a in actions] == [p.title for p in protocol.phases]
    ids = [a["id"] for a in actions]
    assert all(FHIR_ID.match(i) for i in ids + goal_ids)
    for index, (phase, action) in enumerate(zip(protocol.phases, actions, strict=True)):
        assert action["code"][0]["coding"][0]["code"] == phase.key
        assert set(action.get("goalId", [])) <= set(goal_ids)
        assert len(action.get("goalId", [])) == len(phase.goals)
        if index == 0:
            assert "relatedAction" not in action
        else:
            (related,) = action["relatedAction"]
            assert related["relationship"] in ACTION_RELATIONSHIP
            assert related == {"actionId": ids[index - 1], "relationship": "after-end"}
        if phase.days is None:
            assert "timingDuration" not in action
        else:
            assert action["timingDuration"] == {
                "value": phase.days,
                "unit": "d",
                "system": UCUM,
                "code": "d",
            }
        nested = action.get("action", [])
        assert len(nested) == len(phase.sessions)
        for template, child in zip(phase.sessions, nested, strict=True):
            (kind,) = child["code"][0]["coding"]
            assert kind["system"] == SESSION_KIND_SYSTEM and kind["code"] == template.kind.value
            assert child["description"]
        cited = {doc["label"] for doc in action.get("documentation", [])}
        assert cited == set(phase.evidence)


def test_plan_definition_cites_every_reference(protocol: Any) -> None:
    artifacts = plan_definition(protocol)["relatedArtifact"]
    assert len(artifacts) == len(protocol.references)
    for ref, artifact in zip(protocol.references, artifacts, strict=True):
        assert artifact["type"] == "citation"
        assert artifact["citation"] == ref.citation
        assert artifact.get("url") == ref.url


def test_conservative_phase_keys_become_valid_action_ids() -> None:
    document = plan_definition(CATALOG.get("femoral-neck-compression-conservative"))
    assert document["action"][0]["id"] == "non-weight-bearing"
    assert document["action"][1]["relatedAction"] == [
        {"actionId": "non-weight-bearing", "relationship": "after-end"}
    ]
    assert document["name"] == "FemoralNeckCompressionConservative"


# --------------------------------------------------------- CapabilityStatement


def test_capability_statement() -> None:
    document = capability_statement(base_url=BASE, software_version="0.1.0")
    CapabilityStatement.model_validate(document)
    assert_generic_rules(document)
    assert document["status"] == "active"
    assert document["date"] == "2026-11-23"
    assert document["kind"] == "instance" and document["implementation"]["url"] == BASE + "/fhir/R4"
    assert document["fhirVersion"] == "4.0.1"
    assert document["format"] == ["json"]
    assert document["software"] == {"name": "stride-back", "version": "0.1.0"}
    assert FHIR_NAME.match(document["name"])
    (rest,) = document["rest"]
    assert rest["mode"] == "server"
    assert "Bearer" in rest["security"]["description"]
    resources = {r["type"]: r for r in rest["resource"]}
    assert set(resources) == {"CarePlan", "PlanDefinition"}
    for resource in resources.values():
        codes = [i["code"] for i in resource["interaction"]]
        assert codes == ["read"] and set(codes) <= TYPE_RESTFUL_INTERACTION
    other = capability_statement(software_version="0.2.0", date="2027-01-01")
    CapabilityStatement.model_validate(other)
    assert other["date"] == "2027-01-01" and "url" not in other["implementation"]


# ------------------------------------------------------------ OperationOutcome


@pytest.mark.parametrize(
    ("status", "code"),
    [
        (400, "structure"),
        (401, "login"),
        (403, "forbidden"),
        (404, "not-found"),
        (405, "not-supported"),
        (409, "conflict"),
        (412, "conflict"),
        (413, "too-long"),
        (415, "not-supported"),
        (418, "invalid"),
        (422, "invalid"),
        (429, "throttled"),
        (500, "exception"),
        (503, "exception"),
    ],
)
def test_operation_outcome_issue_codes(status: int, code: str) -> None:
    document = operation_outcome(status, "Something went wrong.")
    OperationOutcome.model_validate(document)
    assert_generic_rules(document)
    assert document["issue"] == [
        {"severity": "error", "code": code, "diagnostics": "Something went wrong."}
    ]
    assert code in ISSUE_TYPE


def test_operation_outcome_field_issues() -> None:
    document = operation_outcome(
        422,
        "The injury classification contradicts itself.",
        issues={
            "injury.fracture_line": ["Is false, but fracture_line_pct 30 measures a line."],
            "diagnosis_date": ["Not a date.", "Required."],
        },
    )
    OperationOutcome.model_validate(document)
    assert_generic_rules(document)
    issues = document["issue"]
    assert issues[0]["diagnostics"] == "The injury classification contradicts itself."
    assert [(i["expression"], i["diagnostics"]) for i in issues[1:]] == [
        (["diagnosis_date"], "Not a date."),
        (["diagnosis_date"], "Required."),
        (["injury.fracture_line"], "Is false, but fracture_line_pct 30 measures a line."),
    ]
    assert all(i["severity"] == "error" and i["code"] in ISSUE_TYPE for i in issues)


@pytest.mark.parametrize("site", ["tibia_posteromedial", "navicular", "femoral_shaft"])
def test_other_sites_are_named_and_coded_only_where_a_code_is_known(site: str) -> None:
    made = make_plan(
        PlanRequest(
            diagnosis_date=date(2026, 11, 20),
            injury=classify(site=site, laterality="right"),
            athlete=Athlete(reference="c-1"),
        ),
        shipped_catalog(),
        plan_id="3f2c0c8e-0000-4000-8000-000000000009",
        created_at=datetime(2026, 11, 23, 9, 0, tzinfo=UTC),
    )
    resource = care_plan(made)
    CarePlan.model_validate(resource)
    condition = resource["contained"][0]
    assert "femoral neck" not in json.dumps(condition)
    codes = [c["code"] for c in condition["code"].get("coding", [])]
    if site == "femoral_shaft":
        assert codes == ["M84.351A"]
    else:
        assert codes == []
        assert site_name(site) in condition["code"]["text"]
