"""Plans and protocols as FHIR R4 resources, for clinic systems (design.md §1).

Pure functions from domain objects to JSON-ready dicts: no Flask, no clock, no
randomness, so the same plan always gives the same resource (and the same ETag).

* :func:`care_plan` — a ``CarePlan`` with the injury as a contained ``Condition``,
  one activity per phase and one per session; it points at the protocol it was
  made from through ``instantiatesCanonical`` (``url|version``).
* :func:`plan_definition` — a protocol as a ``PlanDefinition``: one action per
  phase (in order, each ``after-end`` of the one before), one nested action per
  session template, and the protocol's references as citations.
* :func:`capability_statement` — what the FHIR endpoint serves.
* :func:`operation_outcome` — an HTTP error as an ``OperationOutcome``.

Codes are either from published code systems (verified, see the constants) or
from local code systems under :data:`CODE_SYSTEM_BASE`; nothing is guessed. The
library that validates these documents in the tests accepts any code, so the tests
also check every code against R4's required value sets.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, date, datetime
from typing import Any

from planner.domain.model import (
    Athlete,
    Injury,
    Level,
    Phase,
    PhaseTemplate,
    Plan,
    Protocol,
    Reference,
    Session,
    SessionKind,
    SessionTemplate,
)
from planner.export.wording import bullet_lines, spell_steps

__all__ = [
    "CARE_PLAN_INTENT_CODES",
    "CARE_PLAN_CATEGORY_SYSTEM",
    "CODE_SYSTEM_BASE",
    "FHIR_VERSION",
    "ICD10CM",
    "PHASE_SYSTEM",
    "SESSION_KIND_SYSTEM",
    "SNOMED",
    "capability_statement",
    "care_plan",
    "condition",
    "issue_type",
    "plan_definition",
    "operation_outcome",
]

Json = dict[str, Any]

FHIR_VERSION = "4.0.1"
XHTML = "http://www.w3.org/1999/xhtml"

# ----------------------------------------------------------------------- code systems

SNOMED = "http://snomed.info/sct"
#: ICD-10-CM as FHIR names it (codes carry their dot, e.g. ``M84.352A``).
ICD10CM = "http://hl7.org/fhir/sid/icd-10-cm"
UCUM = "http://unitsofmeasure.org"
CONDITION_CLINICAL = "http://terminology.hl7.org/CodeSystem/condition-clinical"
CONDITION_VER_STATUS = "http://terminology.hl7.org/CodeSystem/condition-ver-status"
CONDITION_CATEGORY = "http://terminology.hl7.org/CodeSystem/condition-category"
PLAN_DEFINITION_TYPE = "http://terminology.hl7.org/CodeSystem/plan-definition-type"

#: Local code systems: our own vocabularies (design.md §3), not published terminology.
CODE_SYSTEM_BASE = "https://stride-back.dev/fhir/CodeSystem"
CARE_PLAN_CATEGORY_SYSTEM = f"{CODE_SYSTEM_BASE}/care-plan-category"
SESSION_KIND_SYSTEM = f"{CODE_SYSTEM_BASE}/session-kind"
PHASE_SYSTEM = f"{CODE_SYSTEM_BASE}/plan-phase"

#: SNOMED CT 773513001 |Physiotherapy care plan (record artifact)|, a descendant of
#: 734163000 |Care plan| and so in FHIR's example care-plan-category value set. Only
#: the conservative pathway is a physiotherapy programme; a surgical referral is not.
PHYSIOTHERAPY_CARE_PLAN = ("773513001", "Physiotherapy care plan")
#: SNOMED CT 704067000 |Stress fracture of femur (disorder)|. SNOMED has no verified
#: pre-coordinated "stress fracture of neck of femur", so the broader concept is
#: used, and only when MRI shows a fracture line (marrow oedema alone is no fracture).
STRESS_FRACTURE_OF_FEMUR = ("704067000", "Stress fracture of femur")
#: SNOMED CT 29627003 |Structure of neck of femur (body structure)|.
NECK_OF_FEMUR = ("29627003", "Structure of neck of femur")

#: ICD-10-CM M84.35- "Stress fracture, pelvis and femur": 6th character 1 right
#: femur, 2 left femur, 3 unspecified femur (…0 is pelvis, …9 "hip, unspecified");
#: 7th character A "initial encounter for fracture" (active treatment). M84.3
#: includes "stress reaction", so an oedema-only injury is coded the same way.
ICD10CM_STRESS_FRACTURE_FEMUR: Mapping[str | None, tuple[str, str]] = {
    "right": ("M84.351A", "Stress fracture, right femur, initial encounter for fracture"),
    "left": ("M84.352A", "Stress fracture, left femur, initial encounter for fracture"),
    None: ("M84.353A", "Stress fracture, unspecified femur, initial encounter for fracture"),
}

#: http://hl7.org/fhir/R4/valueset-care-plan-intent.html (CarePlan.intent, required)
CARE_PLAN_INTENT_CODES = frozenset({"proposal", "plan", "order", "option"})

#: Plan status → CarePlan.status: a stopped plan waits for a clinician (on hold); a
#: cancelled one is withdrawn (revoked).
_CARE_PLAN_STATUS = {"active": "active", "stopped": "on-hold", "cancelled": "revoked"}
#: Session status → activity status; statuses the domain may add later map too.
_SESSION_STATUS = {
    "planned": "scheduled",
    "scheduled": "scheduled",
    "cancelled": "cancelled",
    "completed": "completed",
    "done": "completed",
    "in_progress": "in-progress",
    "on_hold": "on-hold",
    "stopped": "stopped",
}
_ISSUE_BY_STATUS = {
    400: "structure",
    401: "login",
    403: "forbidden",
    404: "not-found",
    405: "not-supported",
    406: "not-supported",
    409: "conflict",
    410: "deleted",
    412: "conflict",
    413: "too-long",
    415: "not-supported",
    422: "invalid",
    429: "throttled",
}

_KIND_LABELS = {
    "cross_training": "Cross-training",
    "strength": "Strength",
    "walk": "Walk",
    "run_walk": "Run/walk intervals",
    "run": "Run",
    "review": "Clinical review",
}
_PATHWAY_LABELS = {
    "conservative": "Conservative return to running",
    "surgical_referral": "Urgent surgical referral",
}
_AT_TEXT = {"start": "once, on the phase's first day", "end": "once, on the phase's last day"}
_DAYS_TEXT = {"all": "every day", "run_days": "on run days", "off_days": "on days off"}
_FHIR_ID = re.compile(r"[^A-Za-z0-9\-.]")
_NAME_PART = re.compile(r"[A-Za-z0-9]+")

# ------------------------------------------------------------------------- CarePlan


def care_plan(
    plan: Plan,
    *,
    base_url: str = "",
    intent: str = "proposal",
    subject_system: str = "urn:stride-back:athlete",
) -> Json:
    """The plan as an R4 ``CarePlan``.

    ``intent`` is ``proposal`` until a clinician confirms the plan, then ``plan``
    (the caller knows; the plan does not). ``base_url`` prefixes the canonical URL
    of the protocol's PlanDefinition, so it resolves on the serving host.
    """
    if intent not in CARE_PLAN_INTENT_CODES:
        raise ValueError(f"intent must be one of {sorted(CARE_PLAN_INTENT_CODES)}, not {intent!r}")
    status = _value(plan.status)
    subject = _subject(plan.request.athlete, subject_system)
    category = [
        {
            "coding": [
                {
                    "system": CARE_PLAN_CATEGORY_SYSTEM,
                    "code": "return-to-run",
                    "display": "Return-to-run plan",
                }
            ],
            "text": "Return-to-run plan after a bone stress injury",
        }
    ]
    if _value(plan.pathway) == "conservative":
        code, display = PHYSIOTHERAPY_CARE_PLAN
        category.append(
            {"coding": [{"system": SNOMED, "code": code, "display": display}], "text": display}
        )
    document: Json = {
        "resourceType": "CarePlan",
        "id": plan.id,
        "meta": {"versionId": str(plan.revision), "lastUpdated": _instant(plan.updated_at)},
        "text": {"status": "generated", "div": _care_plan_narrative(plan)},
        "contained": [condition(plan, subject=_subject(plan.request.athlete, subject_system))],
        "instantiatesCanonical": [_canonical(base_url, plan.protocol.id, plan.protocol.version)],
        "status": _CARE_PLAN_STATUS.get(status, "unknown"),
        "intent": intent,
        "category": category,
        "title": plan.protocol.title,
        "description": _plan_description(plan),
        "subject": subject,
        "period": {"start": plan.start_date.isoformat(), "end": plan.end_date.isoformat()},
        "created": _instant(plan.created_at),
        "addresses": [{"reference": "#injury", "display": _injury_text(plan.request.injury)}],
        "activity": [
            *(_phase_activity(plan, phase) for phase in plan.phases),
            *(_session_activity(session) for session in plan.sessions),
        ],
    }
    notes = [
        *(f"{_value(a.severity).capitalize()} ({a.code}): {a.message}" for a in plan.alerts),
        *(f"If it hurts: {rule}" for rule in plan.pain_rules),
    ]
    if notes:
        document["note"] = [{"text": text} for text in notes]
    return document


def condition(plan: Plan, *, subject: Json | None = None) -> Json:
    """The injury as a ``Condition`` (contained in the CarePlan as ``#injury``).

    Coded with ICD-10-CM (by laterality) and, when MRI shows a fracture line,
    SNOMED CT's "stress fracture of femur"; the text says exactly what was found.
    """
    injury = plan.request.injury
    laterality = _value(injury.laterality) if injury.laterality is not None else None
    site = _value(injury.site)
    codings: list[Json] = []
    if site in FEMORAL_SITES:  # verified codes exist only for the femur (see above)
        icd_code, icd_display = ICD10CM_STRESS_FRACTURE_FEMUR.get(
            laterality, ICD10CM_STRESS_FRACTURE_FEMUR[None]
        )
        codings.append({"system": ICD10CM, "code": icd_code, "display": icd_display})
        if injury.fracture_line:
            sct_code, sct_display = STRESS_FRACTURE_OF_FEMUR
            codings.append({"system": SNOMED, "code": sct_code, "display": sct_display})
    name = site_name(site)
    side = f"{laterality.capitalize()} {name}" if laterality else name.capitalize()
    body_site: Json = {"text": f"{side}, {_side_text(injury)}" if injury.type else side}
    if site == "femoral_neck":
        site_code, site_display = NECK_OF_FEMUR
        body_site = {
            "coding": [{"system": SNOMED, "code": site_code, "display": site_display}],
            **body_site,
        }
    code: Json = (
        {"coding": codings, "text": _injury_text(injury)}
        if codings
        else {"text": _injury_text(injury)}
    )
    diagnosed = plan.request.diagnosis_date.isoformat()
    return {
        "resourceType": "Condition",
        "id": "injury",
        "clinicalStatus": {
            "coding": [{"system": CONDITION_CLINICAL, "code": "active", "display": "Active"}]
        },
        "verificationStatus": {
            "coding": [
                {"system": CONDITION_VER_STATUS, "code": "confirmed", "display": "Confirmed"}
            ]
        },
        "category": [
            {
                "coding": [
                    {
                        "system": CONDITION_CATEGORY,
                        "code": "encounter-diagnosis",
                        "display": "Encounter Diagnosis",
                    }
                ]
            }
        ],
        "code": code,
        "bodySite": [body_site],
        "subject": subject if subject is not None else _subject(plan.request.athlete),
        "onsetDateTime": diagnosed,
        "recordedDate": diagnosed,
        "note": [{"text": _mri_findings(injury)}],
    }


def _phase_activity(plan: Plan, phase: Phase) -> Json:
    """A phase as an activity: its dates (end inclusive, as FHIR periods are), its
    goals and the criteria a clinician checks before the next phase."""
    lines = [
        *bullet_lines("Goals:", phase.goals),
        *bullet_lines("Criteria to advance:", phase.advance_criteria),
    ]
    lines += bullet_lines("Guidance:", phase.guidance)
    detail: Json = {
        "code": {
            "coding": [{"system": PHASE_SYSTEM, "code": phase.key, "display": phase.title}],
            "text": phase.title,
        },
        "status": _phase_status(plan, phase),
        "scheduledPeriod": {
            "start": phase.start_date.isoformat(),
            "end": phase.end_date.isoformat(),
        },
    }
    if lines:
        detail["description"] = "\n".join(lines)
    return {"detail": detail}


def _phase_status(plan: Plan, phase: Phase) -> str:
    """No clock here: a phase is ``completed`` only once the plan's recorded progress
    closed it; the rest follow the plan's own status."""
    progress = getattr(plan, "progress", None)
    frozen = {key for key, _ in getattr(progress, "frozen_ends", ())}
    if phase.key in frozen:
        return "completed"
    status = _value(plan.status)
    if status == "cancelled":
        cancelled_on = getattr(progress, "cancelled_on", None)
        started = cancelled_on is not None and phase.start_date <= cancelled_on
        return "stopped" if started else "cancelled"
    if status == "stopped":
        return "on-hold"
    return "scheduled"


def _session_activity(session: Session) -> Json:
    """A session as an activity: timed sessions keep their local UTC offset, all-day
    ones are a single dated event; reviews are appointments."""
    kind = _value(session.kind)
    detail: Json = {}
    if kind == SessionKind.REVIEW.value:
        detail["kind"] = "Appointment"
    detail["code"] = {
        "coding": [
            {"system": SESSION_KIND_SYSTEM, "code": kind, "display": _KIND_LABELS.get(kind, kind)}
        ],
        "text": session.title,
    }
    status = getattr(session, "status", None)
    detail["status"] = (
        "scheduled" if status is None else _SESSION_STATUS.get(_value(status), "unknown")
    )
    if session.start is not None:
        period = {"start": _instant(session.start)}
        if session.end is not None:
            period["end"] = _instant(session.end)
        detail["scheduledPeriod"] = period
    else:
        detail["scheduledTiming"] = {"event": [session.date.isoformat()]}
    detail["description"] = _session_description(session)
    return {"detail": detail}


def _session_description(session: Session) -> str:
    lines = [session.title]
    if session.steps:
        lines.append(spell_steps(session.steps, session.repeat, brief=True))
    elif session.duration_min:
        lines.append(f"{session.duration_min} min.")
    if session.notes:
        lines.append(session.notes)
    lines += bullet_lines("Criteria:", session.criteria)
    return "\n".join(lines)


def _plan_description(plan: Plan) -> str:
    pathway = _value(plan.pathway)
    text = (
        f"{_PATHWAY_LABELS.get(pathway, pathway)} for {_injury_text(plan.request.injury).lower()}"
        f", from {plan.start_date.isoformat()} to {plan.end_date.isoformat()}, following "
        f"protocol {plan.protocol.id} version {plan.protocol.version}."
    )
    first_run = _first_run(plan)
    if first_run is not None:
        text += f" Expected first run: {first_run.isoformat()}."
    else:
        text += " No running is planned."
    return text + " Dates are a projection: each step waits for a clinician's criteria."


def _first_run(plan: Plan) -> date | None:
    """The first running session still planned (the domain's own rule, read defensively)."""
    expected = getattr(plan, "expected_return_to_run_date", None)
    if isinstance(expected, date):
        return expected
    return None


# ------------------------------------------------------------------- the narrative


def _care_plan_narrative(plan: Plan) -> str:
    """Human-readable summary: pathway, alerts, phases with dates, next steps. Built
    with ElementTree so every text is escaped and the div is well-formed XHTML."""
    div = ET.Element("div", {"xmlns": XHTML})
    ET.SubElement(div, "h3").text = plan.protocol.title
    pathway = _value(plan.pathway)
    _paragraph(
        div,
        f"{_PATHWAY_LABELS.get(pathway, pathway)}: {_injury_text(plan.request.injury)}. "
        f"Protocol {plan.protocol.id} version {plan.protocol.version}; "
        f"plan status {_value(plan.status)}, revision {plan.revision}.",
    )
    urgent = [a for a in plan.alerts if _value(a.severity) == "urgent"]
    if urgent:
        alerts = ET.SubElement(div, "ul")
        for alert in urgent:
            item = ET.SubElement(alerts, "li")
            ET.SubElement(item, "b").text = "Urgent: "
            ET.SubElement(item, "span").text = alert.message
    table = ET.SubElement(div, "table")
    head = ET.SubElement(ET.SubElement(table, "thead"), "tr")
    for label in ("Phase", "From", "To (inclusive)"):
        ET.SubElement(head, "th").text = label
    body = ET.SubElement(table, "tbody")
    for phase in plan.phases:
        row = ET.SubElement(body, "tr")
        for value in (phase.title, phase.start_date.isoformat(), phase.end_date.isoformat()):
            ET.SubElement(row, "td").text = value
    ET.SubElement(div, "p").text = "Next steps:"
    steps = ET.SubElement(div, "ul")
    for line in _next_steps(plan):
        ET.SubElement(steps, "li").text = line
    return ET.tostring(div, encoding="unicode", short_empty_elements=False)


def _next_steps(plan: Plan) -> list[str]:
    """What comes next, from the plan alone: the next clinical review after the
    recorded history, and the first run (or that none is planned)."""
    progress = getattr(plan, "progress", None)
    horizon = getattr(progress, "horizon", None)
    lines = []
    review = next(
        (
            s
            for s in plan.sessions
            if _value(s.kind) == SessionKind.REVIEW.value
            and _value(getattr(s, "status", "planned")) != "cancelled"
            and (horizon is None or s.date > horizon)
        ),
        None,
    )
    if review is not None:
        lines.append(f"{review.date.isoformat()}: {review.title}.")
    first_run = _first_run(plan)
    if first_run is not None:
        lines.append(f"{first_run.isoformat()}: first run, if the clinician agrees.")
    else:
        lines.append("No running is planned.")
    lines.append(
        "Stop and seek care for pain at rest or at night, a limp, or being unable to bear weight."
    )
    return lines


def _paragraph(parent: ET.Element, text: str) -> None:
    ET.SubElement(parent, "p").text = text


# ------------------------------------------------------------------ PlanDefinition


def plan_definition(protocol: Protocol, *, base_url: str = "") -> Json:
    """A protocol as an R4 ``PlanDefinition`` (type clinical-protocol).

    FHIR ``id`` values allow only letters, digits, ``-`` and ``.``, so phase keys
    become action ids with ``_`` turned into ``-`` (``non_weight_bearing`` →
    ``non-weight-bearing``); the key itself stays in each action's code.
    """
    goals: list[Json] = []
    actions: list[Json] = []
    previous: str | None = None
    for phase in protocol.phases:
        action_id = _fhir_id(phase.key)
        goal_ids = []
        for number, text in enumerate(phase.goals, start=1):
            goal_id = _fhir_id(f"{phase.key}-goal-{number}")
            goal_ids.append(goal_id)
            goals.append({"id": goal_id, "description": {"text": text}})
        actions.append(_phase_action(protocol, phase, action_id, goal_ids, previous))
        previous = action_id
    document: Json = {
        "resourceType": "PlanDefinition",
        "id": protocol.id,
        "text": {"status": "generated", "div": _protocol_narrative(protocol)},
        "url": _canonical(base_url, protocol.id),
        "version": protocol.version,
        "name": _computable_name(protocol.id),
        "title": protocol.title,
        "type": {
            "coding": [
                {
                    "system": PLAN_DEFINITION_TYPE,
                    "code": "clinical-protocol",
                    "display": "Clinical Protocol",
                }
            ]
        },
        "status": "active",
        "description": protocol.summary,
    }
    if protocol.pain_rules:
        document["usage"] = "If it hurts:\n" + "\n".join(f"- {r}" for r in protocol.pain_rules)
    if protocol.references:
        document["relatedArtifact"] = [_citation(ref) for ref in protocol.references]
    if goals:
        document["goal"] = goals
    document["action"] = actions
    return document


def _phase_action(
    protocol: Protocol,
    phase: PhaseTemplate,
    action_id: str,
    goal_ids: list[str],
    previous: str | None,
) -> Json:
    lines = [*bullet_lines("Criteria to advance:", phase.advance_criteria)]
    lines += bullet_lines("Guidance:", phase.guidance)
    rules = [
        f"{rule.days} days when {_condition_text(rule.when)}"
        + (f": {rule.reason}" if rule.reason else "")
        for rule in phase.duration_rules
    ]
    if phase.range_days is not None:
        rules.append(f"published range {phase.range_days[0]}–{phase.range_days[1]} days")
    if phase.days is None:
        rules.append("as long as its session programme takes")
    lines += bullet_lines("Length:", rules)
    action: Json = {
        "id": action_id,
        "title": phase.title,
        "code": [
            {
                "coding": [{"system": PHASE_SYSTEM, "code": phase.key, "display": phase.title}],
                "text": phase.title,
            }
        ],
    }
    if lines:
        action["description"] = "\n".join(lines)
    documentation = [_citation(ref) for ref in _evidence(protocol, phase.evidence)]
    if documentation:
        action["documentation"] = documentation
    if goal_ids:
        action["goalId"] = goal_ids
    if previous is not None:
        action["relatedAction"] = [{"actionId": previous, "relationship": "after-end"}]
    if phase.days is not None:
        action["timingDuration"] = _days(phase.days)
    if phase.sessions:
        action["action"] = [_template_action(phase, t) for t in phase.sessions]
    return action


def _template_action(phase: PhaseTemplate, template: SessionTemplate) -> Json:
    """A session template as a nested action: what kind, how often, its levels."""
    kind = _value(template.kind)
    label = _KIND_LABELS.get(kind, kind)
    title = template.levels[0].title if len(template.levels) == 1 else label
    if template.at in _AT_TEXT:
        schedule = [_AT_TEXT[template.at]]
    else:
        schedule = [_DAYS_TEXT.get(template.days, template.days)]
    if template.per_week:
        schedule.append(f"{template.per_week} per week")
    if template.sessions_per_level:
        schedule.append(f"{template.sessions_per_level} pain-free sessions per level")
    if template.advance == "weekly":
        schedule.append("one level per week")
    if template.no_consecutive_days:
        schedule.append("never on consecutive days")
    if template.when:
        schedule.append(f"when {_condition_text(template.when)}")
    lines = [f"{label}: {', '.join(schedule)}."]
    if len(template.levels) > 1:
        lines += bullet_lines("Levels:", [_level_text(level) for level in template.levels])
    else:
        level = template.levels[0]
        if level.steps:
            lines.append(spell_steps(level.steps, level.repeat, brief=True))
        if level.notes:
            lines.append(level.notes)
    lines += bullet_lines("Criteria:", template.criteria)
    action: Json = {
        "id": _fhir_id(f"{phase.key}.{template.key}"),
        "title": title,
        "description": "\n".join(lines),
        "code": [{"coding": [{"system": SESSION_KIND_SYSTEM, "code": kind, "display": label}]}],
    }
    if len(template.levels) == 1 and template.levels[0].duration_min:
        action["timingDuration"] = _minutes(template.levels[0].duration_min)
    return action


def _level_text(level: Level) -> str:
    if level.steps:
        return f"{level.title} — {spell_steps(level.steps, level.repeat, brief=True)}"
    if level.duration_min:
        return f"{level.title} — {level.duration_min} min."
    return level.title


def _protocol_narrative(protocol: Protocol) -> str:
    div = ET.Element("div", {"xmlns": XHTML})
    ET.SubElement(div, "h3").text = f"{protocol.title} (version {protocol.version})"
    _paragraph(div, protocol.summary)
    phases = ET.SubElement(div, "ol")
    for phase in protocol.phases:
        length = f" — {phase.days} days" if phase.days is not None else ""
        ET.SubElement(phases, "li").text = f"{phase.title}{length}"
    return ET.tostring(div, encoding="unicode", short_empty_elements=False)


def _evidence(protocol: Protocol, keys: Iterable[str]) -> list[Reference]:
    found = []
    for key in keys:
        try:
            found.append(protocol.reference(key))
        except KeyError:
            continue  # the loader already refuses unknown keys; never fail an export on it
    return found


def _citation(ref: Reference) -> Json:
    artifact: Json = {"type": "citation", "label": ref.key, "citation": ref.citation}
    if ref.url:
        artifact["url"] = ref.url
    return artifact


# --------------------------------------------------------------- CapabilityStatement


def capability_statement(
    *, base_url: str = "", software_version: str, date: str = "2026-11-23"
) -> Json:
    """What the FHIR endpoint offers: read-only CarePlan and PlanDefinition, JSON,
    behind the same bearer API keys as ``/v1``. ``date`` is the release date, passed
    in so the statement never depends on the clock."""
    implementation: Json = {"description": "stride-back FHIR R4 read-only endpoint"}
    if base_url:
        implementation["url"] = f"{base_url}/fhir/R4"
    return {
        "resourceType": "CapabilityStatement",
        "name": "StrideBackFhirServer",
        "title": "stride-back FHIR R4 endpoint",
        "status": "active",
        "date": date,
        "publisher": "stride-back",
        "description": (
            "Return-to-run plans as CarePlan resources and the protocols they follow as "
            "PlanDefinition resources. Read-only."
        ),
        "kind": "instance",
        "software": {"name": "stride-back", "version": software_version},
        "implementation": implementation,
        "fhirVersion": FHIR_VERSION,
        "format": ["json"],
        "rest": [
            {
                "mode": "server",
                "documentation": "Plans are created through the /v1 API; this endpoint reads them.",
                "security": {
                    "cors": False,
                    "description": (
                        "Every request needs 'Authorization: Bearer <API key>'. Keys belong to an "
                        "organisation and see only that organisation's plans; others answer 404."
                    ),
                },
                "resource": [
                    {
                        "type": "CarePlan",
                        "documentation": "A plan; meta.versionId is the plan revision.",
                        "interaction": [{"code": "read"}],
                        "versioning": "versioned",
                        "readHistory": False,
                    },
                    {
                        "type": "PlanDefinition",
                        "documentation": "A protocol; its url|version is what plans instantiate.",
                        "interaction": [{"code": "read"}],
                    },
                ],
            }
        ],
    }


# ----------------------------------------------------------------- OperationOutcome


def issue_type(status: int) -> str:
    """The R4 IssueType for an HTTP error status (5xx → ``exception``)."""
    if status >= 500:
        return "exception"
    return _ISSUE_BY_STATUS.get(status, "invalid" if status >= 400 else "informational")


def operation_outcome(
    status: int, detail: str, *, issues: Mapping[str, Sequence[str]] | None = None
) -> Json:
    """An HTTP error as an ``OperationOutcome``: one issue for the error, then one per
    field message, each naming its field in ``expression`` (sorted, so stable)."""
    code = issue_type(status)
    entries: list[Json] = [{"severity": "error", "code": code, "diagnostics": detail}]
    for field in sorted(issues or {}):
        for message in (issues or {})[field]:
            entries.append(
                {"severity": "error", "code": code, "diagnostics": message, "expression": [field]}
            )
    return {"resourceType": "OperationOutcome", "issue": entries}


# -------------------------------------------------------------------------- helpers


def _canonical(base_url: str, protocol_id: str, version: str | None = None) -> str:
    url = f"{base_url.rstrip('/')}/fhir/R4/PlanDefinition/{protocol_id}"
    return f"{url}|{version}" if version else url


def _subject(athlete: Athlete, system: str = "urn:stride-back:athlete") -> Json:
    """A Patient reference by business identifier; ``display`` alone when the athlete
    has no reference (still valid: a Reference needs one of its elements)."""
    reference: Json = {}
    if athlete.reference:
        reference["type"] = "Patient"
        reference["identifier"] = {"system": system, "value": athlete.reference}
    if athlete.name:
        reference["display"] = athlete.name
    elif not athlete.reference:
        reference["display"] = "Unidentified athlete"
    return reference


#: Sites coded with the ICD-10-CM "stress fracture, femur" codes.
FEMORAL_SITES = frozenset({"femoral_neck", "femoral_shaft", "femoral_head"})
#: How each site reads in a sentence.
SITE_NAMES = {
    "femoral_neck": "femoral neck",
    "femoral_shaft": "femoral shaft",
    "femoral_head": "femoral head",
    "tibia_posteromedial": "posteromedial tibia",
    "tibia_anterior": "anterior tibial cortex",
    "fibula": "fibula",
    "metatarsal_shaft": "metatarsal shaft",
    "metatarsal_5_proximal": "proximal fifth metatarsal",
    "calcaneus": "calcaneus",
    "pubic_ramus": "pubic ramus",
    "navicular": "tarsal navicular",
    "medial_malleolus": "medial malleolus",
    "sesamoid": "hallux sesamoid",
    "patella": "patella",
    "talus": "talus",
}


def site_name(site: str) -> str:
    return SITE_NAMES.get(site, site.replace("_", " "))


def _injury_text(injury: Injury) -> str:
    what = "Stress fracture" if injury.fracture_line else "Bone stress injury (marrow oedema)"
    side = f"{_value(injury.laterality)} " if injury.laterality is not None else ""
    text = f"{what} of the {side}{site_name(_value(injury.site))}"
    if injury.type is not None:
        text += f", {_side_text(injury)}"
    return text


def _side_text(injury: Injury) -> str:
    return {
        "compression": "compression (inferomedial) side",
        "tension": "tension (superolateral) side",
    }.get(_value(injury.type), f"{_value(injury.type)} side")


def _mri_findings(injury: Injury) -> str:
    """The MRI classification in one sentence, every finding named (domain.md A1)."""
    parts = []
    if injury.laterality is not None:
        parts.append(f"side: {_value(injury.laterality)}")
    if injury.type is not None:
        parts.append(f"type: {_side_text(injury)}")
    if injury.mri_grade is not None:
        parts.append(f"MRI grade {injury.mri_grade}")
    if injury.fracture_line:
        line = "fracture line"
        if injury.fracture_line_pct is not None:
            line += f" {injury.fracture_line_pct}% of neck width"
        parts.append(line)
    else:
        parts.append("no fracture line (marrow oedema)")
    flags = {
        "complete": injury.complete,
        "displaced": injury.displaced,
        "hip effusion": injury.hip_effusion,
        "progression on imaging": injury.progression_on_imaging,
    }
    parts += [name for name, present in flags.items() if present]
    if not injury.can_bear_weight:
        parts.append("cannot bear weight")
    return "MRI findings: " + "; ".join(parts) + "."


def _condition_text(condition: Any) -> str:
    return " and ".join(
        f"{name.replace('_', ' ')} is {' or '.join(_word(v) for v in values)}"
        for name, values in condition
    )


def _word(value: object) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(_value(value))


def _days(days: int) -> Json:
    return {"value": days, "unit": "d", "system": UCUM, "code": "d"}


def _minutes(minutes: int) -> Json:
    return {"value": minutes, "unit": "min", "system": UCUM, "code": "min"}


def _instant(value: datetime) -> str:
    """A FHIR instant: seconds and an explicit offset. The offset is kept as it is
    (07:00-05:00 stays local); a naive value is taken as UTC, as the store keeps it."""
    if value.tzinfo is None or value.utcoffset() is None:
        value = value.replace(tzinfo=UTC)
    return value.replace(microsecond=0).isoformat()


def _fhir_id(text: str) -> str:
    """A valid FHIR ``id`` ([A-Za-z0-9-.]{1,64}) from a key."""
    return _FHIR_ID.sub("-", text)[:64] or "x"


def _computable_name(identifier: str) -> str:
    """CamelCase of an id, matching FHIR's name rule ``[A-Z]([A-Za-z0-9_]){0,254}``."""
    name = "".join(part[:1].upper() + part[1:] for part in _NAME_PART.findall(identifier))
    if not name[:1].isalpha():
        name = "Protocol" + name
    return name[:255]


def _value(item: object) -> str:
    """The string behind an enum member (or the string itself)."""
    return str(getattr(item, "value", item))
