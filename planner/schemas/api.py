"""Request and response shapes of the HTTP API (design.md §4).

The same request schema validates the command line's input, so ``planner plan``
and ``POST /v1/plans`` can never disagree about what a valid request is.
"""

from __future__ import annotations

import zoneinfo
from functools import cache
from typing import Any

from marshmallow import RAISE, Schema, ValidationError, fields, validate, validates_schema

from planner.domain.model import (
    Clearance,
    EnergyAvailability,
    FractureSide,
    GradingSystem,
    Laterality,
    Outcome,
    Pathway,
    PlanStatus,
    RedFlag,
    RiskFactor,
    SessionKind,
    SessionStatus,
    Severity,
    Site,
    TriadRisk,
    Triage,
    Weekday,
)

HHMM = r"^([01]\d|2[0-3]):[0-5]\d$"


class StrictSchema(Schema):
    """Unknown fields are errors, at every nesting level."""

    class Meta:
        unknown = RAISE


#: How many criteria one gate may record (a phase's criteria are a handful; a long list
#: is a client bug, and every revision stores it).
MAX_CRITERIA = 50
#: The largest revision number a plan can reach (the store's integer column).
MAX_REVISION = 2**31 - 1


@cache
def _iana_zones() -> frozenset[str]:
    # a system's zoneinfo folder also holds "localtime" (the server's own zone), which is
    # no name in the tz database
    return frozenset(zoneinfo.available_timezones()) - {"localtime", "posixrules"}


def _iana_zone(name: str) -> None:
    """Only names from the tz database: ``localtime`` and file paths name whatever zone
    the server happens to be in."""
    if name not in _iana_zones():
        raise ValidationError(
            f"{name!r} is not an IANA time zone name (e.g. 'Europe/London', 'UTC')."
        )


def no_nul(text: str) -> None:
    """A filter with a NUL matches nothing any store can hold (PostgreSQL refuses it)."""
    if "\x00" in text:
        raise ValidationError("Must not contain NUL characters.")


def _enum(enum: type, **kwargs: Any) -> fields.Enum:
    return fields.Enum(enum, by_value=True, **kwargs)


# ----------------------------------------------------------------------------- requests


class AthleteSchema(StrictSchema):
    reference = fields.String(
        validate=validate.Length(min=1, max=200),
        allow_none=True,
        metadata={"description": "The clinic's own identifier for the runner."},
    )
    name = fields.String(validate=validate.Length(min=1, max=200), allow_none=True)


class InjuryInputSchema(StrictSchema):
    site = _enum(
        Site,
        required=True,
        metadata={
            "description": "Bone of the injury. Low-risk sites (tibia_posteromedial, fibula, "
            "metatarsal_shaft, calcaneus, pubic_ramus, femoral_shaft) are managed "
            "conservatively; high-risk sites (tibia_anterior, navicular, "
            "metatarsal_5_proximal, medial_malleolus, sesamoid, patella, talus, "
            "femoral_head) are referred to a specialist; femoral_neck follows its own triage."
        },
    )
    type = _enum(
        FractureSide,
        metadata={
            "description": "Femoral neck only (required there): compression or tension side. "
            "A type for any other site is refused."
        },
    )
    laterality = _enum(Laterality)
    mri_grade = fields.Integer(
        strict=True,
        validate=validate.Range(min=1, max=5),
        metadata={
            "description": "MRI grade in `grading_system`. Without a grading system: a "
            "Nattiv/Arendt-style grade 1–4 (4 = fracture line) that does not change "
            "durations. nattiv, arendt: 1–4, 4 = fracture line. fredericson: 1–4, grade 4 "
            "with fracture_line false = 4a, true = 4b. kaeding_miller: 1–5 for I–V "
            "(III non-displaced line, IV displaced, V non-union)."
        },
    )
    grading_system = _enum(
        GradingSystem,
        metadata={
            "description": "The system mri_grade is stated in; with it, a higher grade "
            "lengthens protection and walking as the protocol documents."
        },
    )
    fracture_line = fields.Boolean(metadata={"description": "A fracture line on MRI."})
    fracture_line_pct = fields.Integer(
        strict=True,
        validate=validate.Range(min=0, max=100),
        metadata={"description": "Femoral neck only: fracture-line length as % of neck width."},
    )
    complete = fields.Boolean(
        metadata={"description": "Femoral neck only: the line crosses the whole neck."}
    )
    displaced = fields.Boolean()
    hip_effusion = fields.Boolean(
        metadata={"description": "Hip-joint effusion on MRI (femoral neck or head only)."}
    )
    progression_on_imaging = fields.Boolean()
    can_bear_weight = fields.Boolean(
        load_default=None, metadata={"description": "Defaults to true."}
    )


class RiskAssessmentSchema(StrictSchema):
    """Female Athlete Triad Cumulative Risk Assessment answers (2014 Coalition [R28]).

    Every answer is optional: one left out scores 0 and is listed as not assessed.
    """

    energy_availability = _enum(
        EnergyAvailability,
        allow_none=True,
        metadata={
            "description": "adequate (no dietary restriction), some_restriction (some "
            "restriction; current or past disordered eating), eating_disorder (meets "
            "DSM-5 criteria)."
        },
    )
    bmi = fields.Float(
        allow_none=True,
        validate=validate.Range(min=8, max=80),
        metadata={"description": "Body-mass index, kg/m² (not for adolescents' cut-offs)."},
    )
    weight_loss_pct_month = fields.Float(
        allow_none=True,
        validate=validate.Range(min=0, max=50),
        metadata={"description": "Weight lost in the last month, % of body weight."},
    )
    menarche_age = fields.Float(
        allow_none=True,
        validate=validate.Range(min=5, max=30),
        metadata={"description": "Age at the first period, years."},
    )
    menses_last_12_months = fields.Integer(
        strict=True,
        allow_none=True,
        validate=validate.Range(min=0, max=20),
        metadata={"description": "Number of periods in the last 12 months."},
    )
    bmd_z_score = fields.Float(
        allow_none=True,
        validate=validate.Range(min=-10, max=10),
        metadata={"description": "Latest DXA bone-mineral-density Z-score."},
    )
    prior_bsi_count = fields.Integer(
        strict=True,
        allow_none=True,
        validate=validate.Range(min=0, max=50),
        metadata={"description": "Earlier bone stress injuries, not counting this one."},
    )
    prior_high_risk_bsi = fields.Boolean(
        allow_none=True,
        metadata={
            "description": "Whether an earlier one was at a high-risk or trabecular site "
            "(e.g. femoral neck, sacrum, pelvis)."
        },
    )

    @validates_schema
    def consistent(self, data: dict[str, Any], **_: Any) -> None:
        if data.get("prior_high_risk_bsi") and data.get("prior_bsi_count") == 0:
            raise ValidationError(
                "Is true, but prior_bsi_count is 0: a prior high-risk injury is a prior injury.",
                "prior_high_risk_bsi",
            )


#: The request-document paths of the risk assessment's answers (without the score).
RISK_ASSESSMENT_REQUEST_FIELDS = tuple(
    f"risk_assessment.{name}" for name in RiskAssessmentSchema._declared_fields
)


class ScheduleInputSchema(StrictSchema):
    run_days = fields.List(
        _enum(Weekday),
        validate=validate.Length(min=1, max=7),
        metadata={"description": "Days running may fall on (RFC 5545 codes). Default MO, WE, FR."},
    )
    session_time = fields.String(
        allow_none=True,
        validate=validate.Regexp(HHMM, error="Must be a 24-hour local time HH:MM, e.g. 07:00."),
        metadata={"description": "Local start time; omit for all-day sessions."},
    )


class FeedSettingsSchema(StrictSchema):
    detail = fields.String(
        load_default="activity",
        validate=validate.OneOf(["activity", "full"]),
        metadata={
            "description": "activity (default): titles and descriptions name the activity, "
            "never the diagnosis; full: every protocol text as written."
        },
    )
    reminder_minutes = fields.Integer(
        strict=True,
        allow_none=True,
        load_default=None,
        validate=validate.Range(min=1, max=1440),
        metadata={"description": "A reminder (VALARM) this long before each timed session."},
    )
    busy = fields.Boolean(
        load_default=False,
        metadata={"description": "Also publish a 'busy' feed: titles 'Training', no details."},
    )


class PlanCreateSchema(StrictSchema):
    diagnosis_date = fields.Date(required=True)
    start_date = fields.Date(
        metadata={"description": "Day 0 of the plan; defaults to diagnosis_date."}
    )
    timezone = fields.String(
        load_default="UTC",
        validate=[validate.Length(min=1, max=64), _iana_zone],
        metadata={"description": "IANA time zone of the runner, e.g. America/New_York."},
    )
    athlete = fields.Nested(AthleteSchema, load_default=dict)
    injury = fields.Nested(InjuryInputSchema, required=True)
    risk_factors = fields.List(_enum(RiskFactor), load_default=list)
    risk_assessment = fields.Nested(
        RiskAssessmentSchema,
        load_default=None,
        allow_none=True,
        metadata={
            "description": "Optional Female Athlete Triad Cumulative Risk Assessment: the "
            "plan shows its score, and 2–5 points add a clearance review and one more "
            "pain-free session per walk/run level; 6 or more (or an eating disorder with "
            "BMI < 16) hold all running behind a medical-clearance gate."
        },
    )
    schedule = fields.Nested(ScheduleInputSchema, load_default=dict)
    feed = fields.Nested(FeedSettingsSchema, load_default=lambda: FeedSettingsSchema().load({}))
    external_id = fields.String(
        validate=validate.Length(min=1, max=200),
        metadata={"description": "Your own id for this plan; filter the list by it."},
    )

    @validates_schema
    def unique_lists(self, data: dict[str, Any], **_: Any) -> None:
        if len(set(data.get("risk_factors", []))) != len(data.get("risk_factors", [])):
            raise ValidationError("Each risk factor at most once.", "risk_factors")
        run_days = data.get("schedule", {}).get("run_days") or []
        if len(set(run_days)) != len(run_days):
            raise ValidationError({"run_days": ["Each day at most once."]}, "schedule")


class PageArgsSchema(StrictSchema):
    page_size = fields.Integer(load_default=20, validate=validate.Range(min=1, max=100))
    cursor = fields.String(
        validate=[validate.Length(min=1, max=500), no_nul],
        metadata={"description": "Opaque: the `links.next` of the previous page carries it."},
    )
    athlete_reference = fields.String(validate=[validate.Length(min=1, max=200), no_nul])
    external_id = fields.String(validate=[validate.Length(min=1, max=200), no_nul])
    status = _enum(PlanStatus)


# ----------------------------------------------------------------------------- responses


class ReferenceSchema(Schema):
    key = fields.String(required=True)
    citation = fields.String(required=True)
    url = fields.String(allow_none=True)


class ProtocolRefSchema(Schema):
    id = fields.String(required=True)
    version = fields.String(required=True)
    title = fields.String(required=True)
    references = fields.List(fields.Nested(ReferenceSchema), required=True)


class InjurySchema(Schema):
    """The normalised classification: implied findings filled in."""

    site = _enum(Site, required=True)
    type = _enum(FractureSide, allow_none=True)
    laterality = _enum(Laterality, allow_none=True)
    mri_grade = fields.Integer(allow_none=True)
    grading_system = _enum(GradingSystem, allow_none=True)
    fracture_line = fields.Boolean(required=True)
    fracture_line_pct = fields.Integer(allow_none=True)
    complete = fields.Boolean(required=True)
    displaced = fields.Boolean(required=True)
    hip_effusion = fields.Boolean(required=True)
    progression_on_imaging = fields.Boolean(required=True)
    can_bear_weight = fields.Boolean(required=True)


class TriadFactorSchema(Schema):
    factor = fields.String(required=True, metadata={"description": "Row of the CRA table."})
    points = fields.Integer(required=True)
    assessed = fields.Boolean(required=True)
    finding = fields.String(required=True)


class RiskAssessmentResultSchema(Schema):
    """The answers as given (null: not assessed) and the scored Triad CRA."""

    energy_availability = _enum(
        EnergyAvailability, allow_none=True, attribute="inputs.energy_availability"
    )
    bmi = fields.Float(allow_none=True, attribute="inputs.bmi")
    weight_loss_pct_month = fields.Float(allow_none=True, attribute="inputs.weight_loss_pct_month")
    menarche_age = fields.Float(allow_none=True, attribute="inputs.menarche_age")
    menses_last_12_months = fields.Integer(
        allow_none=True, attribute="inputs.menses_last_12_months"
    )
    bmd_z_score = fields.Float(allow_none=True, attribute="inputs.bmd_z_score")
    prior_bsi_count = fields.Integer(allow_none=True, attribute="inputs.prior_bsi_count")
    prior_high_risk_bsi = fields.Boolean(allow_none=True, attribute="inputs.prior_high_risk_bsi")
    score = fields.Integer(
        required=True, metadata={"description": "CRA total, the current injury counted."}
    )
    risk_level = _enum(TriadRisk, required=True)
    clearance = _enum(
        Clearance,
        required=True,
        metadata={
            "description": "full (0–1), provisional_limited (2–5), restricted (≥ 6 or categorical)."
        },
    )
    categorical_restriction = fields.String(allow_none=True, required=True)
    factors = fields.List(fields.Nested(TriadFactorSchema), required=True)
    not_assessed = fields.List(fields.String(), required=True)
    dxa_indicated = fields.Boolean(required=True)
    dxa_reasons = fields.List(fields.String(), required=True)
    referrals = fields.List(
        fields.String(),
        required=True,
        metadata={"description": "sports_physician, sports_dietitian, mental_health."},
    )


class ScheduleSchema(Schema):
    run_days = fields.List(_enum(Weekday), required=True)
    session_time = fields.String(allow_none=True)


class SelectionSchema(Schema):
    triage = _enum(Triage, required=True)
    rule = fields.Integer(
        required=True,
        metadata={"description": "Triage rule that fired (domain A2; 5–6 for other sites)."},
    )
    reasons = fields.List(fields.String(), required=True)


class PhaseSchema(Schema):
    key = fields.String(required=True)
    title = fields.String(required=True)
    start_date = fields.Date(required=True)
    end_date = fields.Date(required=True, metadata={"description": "Inclusive."})
    days = fields.Integer(required=True)
    goals = fields.List(fields.String(), required=True)
    advance_criteria = fields.List(fields.String(), required=True)
    guidance = fields.List(fields.String(), required=True)
    status = _enum(
        SessionStatus,
        required=True,
        metadata={
            "description": "cancelled: the plan was cancelled or stopped before this phase "
            "was over (its calendar event is cancelled too)."
        },
    )


class StepSchema(Schema):
    activity = fields.String(required=True, validate=validate.OneOf(["walk", "run"]))
    minutes = fields.Integer(required=True)


class SessionSchema(Schema):
    uid = fields.String(
        required=True, metadata={"description": "VEVENT UID; stable across revisions."}
    )
    date = fields.Date(required=True)
    start = fields.DateTime(
        allow_none=True, metadata={"description": "RFC 3339; null for all-day sessions."}
    )
    end = fields.DateTime(allow_none=True)
    phase = fields.String(required=True)
    kind = _enum(SessionKind, required=True)
    title = fields.String(required=True)
    duration_min = fields.Integer(allow_none=True)
    steps = fields.List(fields.Nested(StepSchema), required=True)
    repeat = fields.Integer(allow_none=True)
    level = fields.Integer(allow_none=True)
    notes = fields.String(required=True)
    criteria = fields.List(fields.String(), required=True)
    sequence = fields.Integer(
        required=True, metadata={"description": "iCalendar SEQUENCE: rises when it changes."}
    )
    status = _enum(SessionStatus, required=True)


class AlertSchema(Schema):
    code = fields.String(required=True)
    severity = _enum(Severity, required=True)
    message = fields.String(required=True)
    references = fields.List(fields.String(), required=True)


class PlanLinksSchema(Schema):
    self = fields.String(required=True)
    ical = fields.String(required=True)
    feed = fields.String(
        allow_none=True, metadata={"description": "Calendar feed to subscribe to (no key)."}
    )
    busy_feed = fields.String(allow_none=True)
    page = fields.String(allow_none=True, metadata={"description": "The runner's page."})


class GateOutSchema(Schema):
    phase = fields.String(required=True)
    met = fields.Boolean(required=True)
    date = fields.Date(required=True, attribute="on")
    criteria = fields.List(fields.String(), required=True)
    extend_days = fields.Integer(required=True)
    notes = fields.String(required=True)


class LevelStateSchema(Schema):
    template = fields.String(required=True)
    level = fields.Integer(required=True, metadata={"description": "0-based level index."})
    counted = fields.Integer(required=True)


class ProgressSchema(Schema):
    """What has been recorded: gates, level states, rest and stop dates."""

    horizon = fields.Date(allow_none=True, required=True)
    gates = fields.List(fields.Nested(GateOutSchema), required=True)
    levels = fields.List(fields.Nested(LevelStateSchema), required=True, attribute="templates")
    rest_until = fields.Date(allow_none=True, required=True)
    stopped_on = fields.Date(allow_none=True, required=True)
    cancelled_on = fields.Date(allow_none=True, required=True)


DISCLAIMER = (
    "This plan is a projection from a published protocol for clinicians, coaches and "
    "runners. It does not diagnose and does not replace a clinician's judgement: "
    "progress only when the criteria are met, and stop and seek care for red flags."
)


class PlanSchema(Schema):
    id = fields.String(required=True)
    revision = fields.Integer(required=True)
    status = _enum(PlanStatus, required=True)
    created_at = fields.DateTime(required=True)
    updated_at = fields.DateTime(required=True)
    external_id = fields.String(allow_none=True, required=True, attribute="request.external_id")
    diagnosis_date = fields.Date(required=True, attribute="request.diagnosis_date")
    start_date = fields.Date(required=True)
    end_date = fields.Date(
        required=True, metadata={"description": "Last day of the plan, inclusive."}
    )
    timezone = fields.String(required=True, attribute="request.preferences.timezone")
    athlete = fields.Nested(AthleteSchema, required=True, attribute="request.athlete")
    injury = fields.Nested(InjurySchema, required=True, attribute="request.injury")
    risk_factors = fields.List(_enum(RiskFactor), required=True, attribute="request.risk_factors")
    risk_assessment = fields.Nested(
        RiskAssessmentResultSchema,
        allow_none=True,
        required=True,
        attribute="selection.triad",
        metadata={"description": "The Triad CRA, or null when none was given."},
    )
    schedule = fields.Nested(ScheduleSchema, required=True, attribute="request.preferences")
    pathway = _enum(Pathway, required=True)
    selection = fields.Nested(SelectionSchema, required=True)
    protocol = fields.Nested(ProtocolRefSchema, required=True)
    phases = fields.List(fields.Nested(PhaseSchema), required=True)
    sessions = fields.List(fields.Nested(SessionSchema), required=True)
    alerts = fields.List(fields.Nested(AlertSchema), required=True)
    pain_rules = fields.List(
        fields.String(), required=True, metadata={"description": "What to do if it hurts."}
    )
    expected_return_to_run_date = fields.Date(
        allow_none=True,
        required=True,
        metadata={"description": "Date of the first running session."},
    )
    progress = fields.Nested(ProgressSchema, required=True)
    feed = fields.Nested(FeedSettingsSchema, required=True, dump_only=True)
    disclaimer = fields.Constant(DISCLAIMER, required=True)
    links = fields.Nested(PlanLinksSchema, required=True, dump_only=True)


class ProtocolVersionSchema(Schema):
    id = fields.String(required=True)
    version = fields.String(required=True)
    title = fields.String(required=True)


class PlanSummarySchema(Schema):
    id = fields.String(required=True)
    external_id = fields.String(allow_none=True, required=True)
    revision = fields.Integer(required=True)
    status = _enum(PlanStatus, required=True)
    created_at = fields.DateTime(required=True)
    athlete = fields.Nested(AthleteSchema, required=True)
    pathway = _enum(Pathway, required=True)
    protocol = fields.Nested(ProtocolVersionSchema, required=True)
    start_date = fields.Date(required=True)
    expected_return_to_run_date = fields.Date(allow_none=True, required=True)
    links = fields.Nested(PlanLinksSchema, required=True)


class PageLinksSchema(Schema):
    self = fields.String(required=True)
    next = fields.String(
        allow_none=True, required=True, metadata={"description": "null on the last page."}
    )


class PlanPageSchema(Schema):
    items = fields.List(fields.Nested(PlanSummarySchema), required=True)
    page_size = fields.Integer(required=True)
    total = fields.Integer(required=True)
    links = fields.Nested(PageLinksSchema, required=True)


# ----------------------------------------------------------------------------- progress


class ExpectedRevisionMixin(StrictSchema):
    revision = fields.Integer(
        strict=True,
        validate=validate.Range(min=1),
        metadata={"description": "The revision you saw; a newer one makes this a 409."},
    )


class CheckInCreateSchema(ExpectedRevisionMixin):
    session_uid = fields.String(validate=validate.Length(min=1, max=200))
    date = fields.Date(metadata={"description": "Instead of session_uid: the session's date."})
    completed = fields.Boolean(load_default=True)
    pain_during = fields.Integer(
        strict=True, load_default=0, validate=validate.Range(min=0, max=10)
    )
    pain_after = fields.Integer(strict=True, load_default=0, validate=validate.Range(min=0, max=10))
    pain_next_morning = fields.Integer(
        strict=True, load_default=0, validate=validate.Range(min=0, max=10)
    )
    pain_building = fields.Boolean(load_default=False)
    gait_changed = fields.Boolean(load_default=False)
    morning_stiffness = fields.Boolean(load_default=False)
    red_flags = fields.List(_enum(RedFlag), load_default=list)
    notes = fields.String(load_default="", validate=validate.Length(max=2000))

    @validates_schema
    def names_a_session(self, data: dict[str, Any], **_: Any) -> None:
        if not data.get("session_uid") and not data.get("date"):
            raise ValidationError("Give session_uid or date.", "session_uid")


class GateCreateSchema(ExpectedRevisionMixin):
    met = fields.Boolean(required=True)
    date = fields.Date(metadata={"description": "Day of the decision; defaults to today."})
    criteria = fields.List(
        fields.String(validate=validate.Length(min=1, max=500)),
        load_default=list,
        validate=validate.Length(max=MAX_CRITERIA),
    )
    extend_days = fields.Integer(
        strict=True, load_default=7, validate=validate.Range(min=1, max=56)
    )
    notes = fields.String(load_default="", validate=validate.Length(max=2000))


class CancelSchema(ExpectedRevisionMixin):
    reason = fields.String(load_default="", validate=validate.Length(max=2000))


class DecisionSchema(Schema):
    outcome = _enum(Outcome, allow_none=True, required=True)
    reason = fields.String(required=True)
    session_uid = fields.String(allow_none=True, required=True)
    warning = fields.String(
        allow_none=True,
        metadata={
            "description": "Accepted, but a clinician should look again: e.g. a protection "
            "gate met before the protocol's shortest protection. Absent or null: none."
        },
    )


class EventOutSchema(Schema):
    seq = fields.Integer(required=True)
    kind = fields.String(required=True)
    date = fields.Date(required=True, attribute="today")
    recorded_at = fields.DateTime(required=True)
    key = fields.String(allow_none=True, required=True)
    revision = fields.Integer(required=True)
    payload = fields.Dict(required=True)
    decision = fields.Nested(DecisionSchema, allow_none=True, required=True)


class EventListSchema(Schema):
    items = fields.List(fields.Nested(EventOutSchema), required=True)


class RecordedSchema(Schema):
    """The answer to a check-in, gate or cancellation: the decision and the new plan."""

    decision = fields.Nested(DecisionSchema, required=True)
    event = fields.Nested(EventOutSchema, required=True)
    plan = fields.Nested(PlanSchema, required=True)


class RevisionOutSchema(Schema):
    revision = fields.Integer(required=True)
    created_at = fields.DateTime(required=True)
    kind = fields.String(required=True)
    reason = fields.String(required=True)
    key = fields.String(allow_none=True, required=True, metadata={"description": "Key name."})
    links = fields.Dict(keys=fields.String(), values=fields.String(), required=True)


class RevisionListSchema(Schema):
    items = fields.List(fields.Nested(RevisionOutSchema), required=True)


class RevisionArgsSchema(StrictSchema):
    revision = fields.Integer(validate=validate.Range(min=1, max=MAX_REVISION))


class FeedLinksSchema(Schema):
    feed = fields.String(allow_none=True, required=True)
    webcal = fields.String(allow_none=True, required=True)
    google = fields.String(allow_none=True, required=True)
    busy_feed = fields.String(allow_none=True, required=True)
    page = fields.String(allow_none=True, required=True)
    settings = fields.Nested(FeedSettingsSchema, required=True)


# ----------------------------------------------------------------------------- protocols


class LevelSchema(Schema):
    title = fields.String(required=True)
    kind = _enum(SessionKind, allow_none=True)
    duration_min = fields.Integer(allow_none=True)
    steps = fields.List(fields.Nested(StepSchema), required=True)
    repeat = fields.Integer(allow_none=True)
    notes = fields.String(required=True)


class ConditionField(fields.Field):
    """A ``when`` condition as ``{fact: [allowed values]}``."""

    def _serialize(self, value: Any, attr: str | None, obj: Any, **kwargs: Any) -> Any:
        return {name: list(allowed) for name, allowed in value or ()}


class SessionTemplateSchema(Schema):
    key = fields.String(required=True)
    kind = _enum(SessionKind, required=True)
    days = fields.String(required=True)
    per_week = fields.Integer(allow_none=True)
    at = fields.String(allow_none=True)
    sessions_per_level = fields.Integer(allow_none=True)
    advance = fields.String(required=True)
    final_level_sessions = fields.Integer(allow_none=True)
    no_consecutive_days = fields.Boolean(required=True)
    criteria = fields.List(fields.String(), required=True)
    when = ConditionField(
        required=True,
        metadata={"type": "object", "additionalProperties": {"type": "array", "items": {}}},
    )
    levels = fields.List(fields.Nested(LevelSchema), required=True)


class DurationRuleSchema(Schema):
    days = fields.Integer(required=True)
    when = ConditionField(
        required=True,
        metadata={"type": "object", "additionalProperties": {"type": "array", "items": {}}},
    )
    reason = fields.String(required=True)


class PhaseTemplateSchema(Schema):
    key = fields.String(required=True)
    title = fields.String(required=True)
    days = fields.Integer(
        allow_none=True, metadata={"description": "null: as long as its programme."}
    )
    hold = fields.Boolean(
        required=True,
        metadata={"description": "Nothing after this phase is scheduled until its gate is met."},
    )
    range_days = fields.List(fields.Integer(), allow_none=True)
    duration_rules = fields.List(fields.Nested(DurationRuleSchema), required=True)
    evidence = fields.List(fields.String(), required=True)
    goals = fields.List(fields.String(), required=True)
    advance_criteria = fields.List(fields.String(), required=True)
    guidance = fields.List(fields.String(), required=True)
    sessions = fields.List(fields.Nested(SessionTemplateSchema), required=True)


class AppliesToSchema(Schema):
    sites = fields.List(_enum(Site), required=True)
    types = fields.List(_enum(FractureSide), required=True)
    triage = fields.List(_enum(Triage), required=True)


class ProtocolSummarySchema(Schema):
    id = fields.String(required=True)
    version = fields.String(required=True)
    title = fields.String(required=True)
    summary = fields.String(required=True)
    pathway = _enum(Pathway, required=True)
    applies_to = fields.Nested(AppliesToSchema, required=True)
    phases = fields.List(fields.Pluck(PhaseTemplateSchema, "key"), required=True)
    references = fields.List(fields.Nested(ReferenceSchema), required=True)


class ProtocolSchema(ProtocolSummarySchema):
    phases = fields.List(fields.Nested(PhaseTemplateSchema), required=True)
    pain_rules = fields.List(fields.String(), required=True)


class ProtocolListSchema(Schema):
    items = fields.List(fields.Nested(ProtocolSummarySchema), required=True)


# ----------------------------------------------------------------------------- errors


class ProblemSchema(Schema):
    """RFC 9457 problem details."""

    type = fields.String(required=True, metadata={"description": "URI naming the problem type."})
    title = fields.String(required=True)
    status = fields.Integer(required=True)
    detail = fields.String()
    instance = fields.String()
    errors = fields.Dict(
        keys=fields.String(),
        values=fields.List(fields.String()),
        metadata={"description": "Field path (e.g. injury.fracture_line) → messages."},
    )


class HealthSchema(Schema):
    status = fields.String(required=True)
    version = fields.String(required=True)
    protocols = fields.Integer(required=True)
