"""The protocol file format, as a marshmallow schema that builds domain objects.

Field errors come back keyed by path (``phases.2.sessions.0.kind``) so that a broken
file is reported with the exact field to fix.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from marshmallow import (
    RAISE,
    Schema,
    ValidationError,
    fields,
    post_load,
    validate,
    validates_schema,
)

from planner.domain.model import (
    CLEARANCE_KEY,
    NO_RUNNING_PHASES,
    NO_WALKING_PHASES,
    AppliesTo,
    Condition,
    DurationRule,
    FractureSide,
    GradingSystem,
    Level,
    PainStop,
    Pathway,
    PhaseTemplate,
    Protocol,
    Reference,
    SessionKind,
    SessionTemplate,
    Site,
    Step,
    Triage,
)
from planner.domain.planning import CONTEXT_FACTS

SEMVER = re.compile(r"^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(?:-[0-9A-Za-z.-]+)?$")
PROTOCOL_ID = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")
KEY = re.compile(r"^[a-z][a-z0-9_]*$")

_text = fields.String(required=True, validate=validate.Length(min=1))


def _texts(**kwargs: Any) -> fields.List:
    return fields.List(fields.String(validate=validate.Length(min=1)), **kwargs)


class _Strict(Schema):
    class Meta:
        unknown = RAISE


def _is_bool(value: object) -> bool:
    return isinstance(value, bool)


def _one_of(vocabulary: Any) -> Any:
    return lambda value: isinstance(value, str) and value in {m.value for m in vocabulary}


#: What each fact can be, so a condition that could never hold (``"true"`` for
#: ``true``, a misspelt triage outcome) is an error rather than a silent no-op.
_FACT_VALUES: dict[str, Any] = {
    "site": _one_of(Site),
    "type": _one_of(FractureSide),
    "triage": _one_of(Triage),
    "mri_grade": lambda v: type(v) is int and 1 <= v <= 5,
    "grading_system": _one_of(GradingSystem),
    "fracture_line": _is_bool,
    "complete": _is_bool,
    "displaced": _is_bool,
    "hip_effusion": _is_bool,
    "progression_on_imaging": _is_bool,
    "can_bear_weight": _is_bool,
}


class ConditionField(fields.Field):
    """``{fact = value}`` or ``{fact = [value, …]}`` → a sorted tuple condition."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> Condition:
        if not isinstance(value, Mapping):
            raise ValidationError("Must be a table of fact = value(s).")
        unknown = sorted(set(value) - CONTEXT_FACTS)
        if unknown:
            raise ValidationError(
                f"Unknown fact(s) {', '.join(unknown)}; known: {', '.join(sorted(CONTEXT_FACTS))}."
            )
        for name, allowed in sorted(value.items()):
            for item in allowed if isinstance(allowed, list) else [allowed]:
                if not _FACT_VALUES.get(name, lambda _: True)(item):
                    raise ValidationError(f"{item!r} is not a possible value of {name}.")
        return tuple(
            (name, tuple(v) if isinstance(v, list) else (v,)) for name, v in sorted(value.items())
        )


class StepSchema(_Strict):
    activity = fields.String(required=True, validate=validate.OneOf(["walk", "run"]))
    minutes = fields.Integer(required=True, validate=validate.Range(min=1, max=240))

    @post_load
    def build(self, data: dict[str, Any], **_: Any) -> Step:
        return Step(**data)


class LevelSchema(_Strict):
    title = _text
    duration_min = fields.Integer(validate=validate.Range(min=1, max=480))
    steps = fields.List(fields.Nested(StepSchema), load_default=list)
    repeat = fields.Integer(validate=validate.Range(min=1, max=50))
    notes = fields.String(load_default="")
    kind = fields.Enum(SessionKind, by_value=True)

    @validates_schema
    def check_steps(self, data: dict[str, Any], **_: Any) -> None:
        steps, minutes = data.get("steps") or [], data.get("duration_min")
        if steps and minutes is not None:
            total = sum(s.minutes for s in steps) * data.get("repeat", 1)
            if total != minutes:
                raise ValidationError(
                    f"Steps add up to {total} min but duration_min is {minutes}.", "steps"
                )

    @post_load
    def build(self, data: dict[str, Any], **_: Any) -> Level:
        return Level(**{**data, "steps": tuple(data["steps"])})


#: Keys the planner adds itself (the medical-clearance review and the Triad hold phase).
_NOT_RESERVED = validate.NoneOf([CLEARANCE_KEY], error="{input!r} is reserved for the planner.")


class SessionTemplateSchema(_Strict):
    key = fields.String(required=True, validate=[validate.Regexp(KEY), _NOT_RESERVED])
    kind = fields.Enum(SessionKind, by_value=True, required=True)
    levels = fields.List(fields.Nested(LevelSchema), required=True, validate=validate.Length(min=1))
    days = fields.String(
        load_default="all", validate=validate.OneOf(["all", "run_days", "off_days"])
    )
    per_week = fields.Integer(validate=validate.Range(min=1, max=7))
    at = fields.String(validate=validate.OneOf(["start", "end"]))
    sessions_per_level = fields.Integer(validate=validate.Range(min=1, max=20))
    advance = fields.String(
        load_default="sessions", validate=validate.OneOf(["sessions", "weekly"])
    )
    final_level_sessions = fields.Integer(validate=validate.Range(min=1, max=20))
    no_consecutive_days = fields.Boolean(load_default=False)
    criteria = _texts(load_default=list)
    when = ConditionField(load_default=dict)
    unloaded = fields.Boolean(load_default=False)

    @validates_schema
    def check_layout(self, data: dict[str, Any], **_: Any) -> None:
        levels = data.get("levels") or []
        if data.get("unloaded") and data.get("kind") is not SessionKind.CROSS_TRAINING:
            raise ValidationError(
                "Only cross-training (upper body or pool, non-weight-bearing) is unloaded.",
                "unloaded",
            )
        if data.get("unloaded") and any(lv.kind for lv in levels):
            raise ValidationError("An unloaded template's levels keep its kind.", "unloaded")
        if data.get("at") and len(levels) > 1:
            raise ValidationError("A single session (at = …) has exactly one level.", "levels")
        if (
            len(levels) > 1
            and data.get("advance") == "sessions"
            and not data.get("sessions_per_level")
        ):
            raise ValidationError(
                "Several levels need sessions_per_level or advance = 'weekly'.",
                "sessions_per_level",
            )
        if data.get("final_level_sessions") and not data.get("sessions_per_level"):
            raise ValidationError("A programme needs sessions_per_level.", "sessions_per_level")
        if data.get("kind") is SessionKind.REVIEW and not data.get("at"):
            raise ValidationError("A review is a single session: set at = 'start' or 'end'.", "at")
        kinds = {data.get("kind")} | {lv.kind for lv in levels if lv.kind}
        if any(k is not None and k.is_running for k in kinds) and data.get("days") != "run_days":
            raise ValidationError("Running sessions must fall on run_days.", "days")
        if any(k is not None and k.is_running for k in kinds) and not data.get(
            "no_consecutive_days"
        ):
            raise ValidationError(
                "Running sessions must set no_consecutive_days = true.", "no_consecutive_days"
            )

    @post_load
    def build(self, data: dict[str, Any], **_: Any) -> SessionTemplate:
        return SessionTemplate(
            **{
                **data,
                "levels": tuple(data["levels"]),
                "criteria": tuple(data["criteria"]),
                "when": data["when"] or (),
            }
        )


class DurationRuleSchema(_Strict):
    when = ConditionField(required=True)
    days = fields.Integer(required=True, validate=validate.Range(min=1, max=366))
    reason = fields.String(load_default="")

    @post_load
    def build(self, data: dict[str, Any], **_: Any) -> DurationRule:
        return DurationRule(**data)


class PhaseSchema(_Strict):
    key = fields.String(required=True, validate=[validate.Regexp(KEY), _NOT_RESERVED])
    title = _text
    days = fields.Integer(validate=validate.Range(min=1, max=366))
    hold = fields.Boolean(load_default=False)
    range_days = fields.List(
        fields.Integer(validate=validate.Range(min=1, max=366)), validate=validate.Length(equal=2)
    )
    duration_rules = fields.List(fields.Nested(DurationRuleSchema), load_default=list)
    evidence = fields.List(fields.String(), load_default=list)
    goals = _texts(required=True, validate=validate.Length(min=1))
    advance_criteria = _texts(required=True, validate=validate.Length(min=1))
    guidance = _texts(load_default=list)
    sessions = fields.List(
        fields.Nested(SessionTemplateSchema), required=True, validate=validate.Length(min=1)
    )

    @validates_schema
    def check_phase(self, data: dict[str, Any], **_: Any) -> None:
        sessions = data.get("sessions") or []
        keys = [t.key for t in sessions]
        if len(keys) != len(set(keys)):
            raise ValidationError("Session template keys must be unique in a phase.", "sessions")
        key = data.get("key")
        for index, template in enumerate(sessions):
            kinds = {template.kind} | {lv.kind for lv in template.levels if lv.kind}
            if key in NO_RUNNING_PHASES and any(k.is_running for k in kinds):
                raise ValidationError(f"No running in phase {key!r}.", f"sessions.{index}.kind")
            if key in NO_WALKING_PHASES and SessionKind.WALK in kinds:
                raise ValidationError(f"No walks in phase {key!r}.", f"sessions.{index}.kind")
        running = [
            t
            for t in sessions
            if t.kind.is_running or any(lv.kind and lv.kind.is_running for lv in t.levels)
        ]
        if len(running) > 1:
            raise ValidationError("At most one running template per phase.", "sessions")
        programmes = [t for t in sessions if t.final_level_sessions is not None]
        if data.get("days") is None and data.get("duration_rules"):
            raise ValidationError("Duration rules need a default length in days.", "days")
        if data.get("days") is None and len(programmes) != 1:
            raise ValidationError(
                "Without days, exactly one session template must set final_level_sessions.", "days"
            )
        if data.get("days") is not None and programmes:
            raise ValidationError(
                "final_level_sessions is only for phases without days.", "sessions"
            )
        if data.get("hold") and not any(
            t.kind is SessionKind.REVIEW and t.at == "end" and not t.when for t in sessions
        ):
            raise ValidationError(
                "A hold phase ends with a review (at = 'end', no when): its gate lifts the hold.",
                "hold",
            )
        low_high = data.get("range_days")
        if low_high and low_high[0] > low_high[1]:
            raise ValidationError("The range must be [shortest, longest].", "range_days")
        if (
            low_high
            and data.get("days") is not None
            and not low_high[0] <= data["days"] <= low_high[1]
        ):
            raise ValidationError("The default length lies outside its evidence range.", "days")
        for index, rule in enumerate(data.get("duration_rules") or []):
            if low_high and not low_high[0] <= rule.days <= low_high[1]:
                raise ValidationError(
                    "The length lies outside its evidence range.", f"duration_rules.{index}.days"
                )

    @post_load
    def build(self, data: dict[str, Any], **_: Any) -> PhaseTemplate:
        range_days = data.get("range_days")
        return PhaseTemplate(
            key=data["key"],
            title=data["title"],
            goals=tuple(data["goals"]),
            advance_criteria=tuple(data["advance_criteria"]),
            guidance=tuple(data["guidance"]),
            sessions=tuple(data["sessions"]),
            days=data.get("days"),
            duration_rules=tuple(data["duration_rules"]),
            range_days=(range_days[0], range_days[1]) if range_days else None,
            evidence=tuple(data["evidence"]),
            hold=data["hold"],
        )


class ReferenceSchema(_Strict):
    key = fields.String(required=True, validate=validate.Regexp(r"^R\d+[a-z]?$"))
    citation = _text
    url = fields.Url(schemes={"http", "https"})

    @post_load
    def build(self, data: dict[str, Any], **_: Any) -> Reference:
        return Reference(**data)


class AppliesToSchema(_Strict):
    sites = fields.List(
        fields.Enum(Site, by_value=True), required=True, validate=validate.Length(min=1)
    )
    types = fields.List(fields.Enum(FractureSide, by_value=True), load_default=list)
    triage = fields.List(
        fields.Enum(Triage, by_value=True), required=True, validate=validate.Length(min=1)
    )

    @validates_schema
    def check_types(self, data: dict[str, Any], **_: Any) -> None:
        if data.get("types") and Site.FEMORAL_NECK not in (data.get("sites") or []):
            raise ValidationError("Only the femoral neck takes types.", "types")

    @post_load
    def build(self, data: dict[str, Any], **_: Any) -> AppliesTo:
        return AppliesTo(
            sites=tuple(data["sites"]), types=tuple(data["types"]), triage=tuple(data["triage"])
        )


class PainStopSchema(_Strict):
    severe_at_least = fields.Integer(required=True, validate=validate.Range(min=3, max=10))
    protection_phases = fields.List(fields.String(validate=validate.Regexp(KEY)), load_default=list)
    unsettled_at_least = fields.Integer(load_default=1, validate=validate.Range(min=1, max=10))
    evidence = fields.List(fields.String(), required=True, validate=validate.Length(min=1))

    @post_load
    def build(self, data: dict[str, Any], **_: Any) -> PainStop:
        return PainStop(
            severe_at_least=data["severe_at_least"],
            protection_phases=tuple(data["protection_phases"]),
            unsettled_at_least=data["unsettled_at_least"],
            evidence=tuple(data["evidence"]),
        )


class ProtocolFileSchema(_Strict):
    id = fields.String(required=True, validate=validate.Regexp(PROTOCOL_ID))
    version = fields.String(
        required=True,
        validate=validate.Regexp(SEMVER, error="Not a semantic version (MAJOR.MINOR.PATCH)."),
    )
    title = _text
    summary = _text
    pathway = fields.Enum(Pathway, by_value=True, required=True)
    applies_to = fields.Nested(AppliesToSchema, required=True)
    references = fields.List(
        fields.Nested(ReferenceSchema), required=True, validate=validate.Length(min=1)
    )
    phases = fields.List(fields.Nested(PhaseSchema), required=True, validate=validate.Length(min=1))
    pain_rules = _texts(load_default=list)
    pain_stop = fields.Nested(PainStopSchema, required=True)

    @validates_schema
    def check_protocol(self, data: dict[str, Any], **_: Any) -> None:
        refs = [r.key for r in data.get("references") or []]
        if len(refs) != len(set(refs)):
            raise ValidationError("Reference keys must be unique.", "references")
        phases = data.get("phases") or []
        keys = [p.key for p in phases]
        if len(keys) != len(set(keys)):
            raise ValidationError("Phase keys must be unique.", "phases")
        for index, phase in enumerate(phases):
            missing = sorted(set(phase.evidence) - set(refs))
            if missing:
                raise ValidationError(
                    f"Cites {', '.join(missing)}, which the references do not list.",
                    f"phases.{index}.evidence",
                )
        pain_stop = data.get("pain_stop")
        if pain_stop is not None:
            missing = sorted(set(pain_stop.evidence) - set(refs))
            if missing:
                raise ValidationError(
                    f"Cites {', '.join(missing)}, which the references do not list.",
                    "pain_stop.evidence",
                )
            unknown = sorted(set(pain_stop.protection_phases) - set(keys))
            if unknown:
                raise ValidationError(
                    f"No phase {', '.join(unknown)} in this protocol.",
                    "pain_stop.protection_phases",
                )
        pathway, triage = (
            data.get("pathway"),
            (data.get("applies_to") or AppliesTo((), (), ())).triage,
        )
        if pathway is not None and any(t.pathway is not pathway for t in triage):
            raise ValidationError(
                f"applies_to.triage must lead to pathway {pathway.value!r}.", "applies_to"
            )
        if pathway is Pathway.SURGICAL_REFERRAL and keys and keys[0] != "surgical_referral":
            raise ValidationError(
                "A surgical-referral protocol starts with the surgical_referral phase.", "phases"
            )
        if (
            pathway is Pathway.SPECIALIST_REFERRAL
            and phases
            and (keys[0] != "specialist_referral" or not phases[0].hold)
        ):
            raise ValidationError(
                "A specialist-referral protocol starts with the specialist_referral phase, "
                "with hold = true: nothing after it is planned until a clinician's gate.",
                "phases",
            )

    @post_load
    def build(self, data: dict[str, Any], **_: Any) -> Protocol:
        return Protocol(
            **{
                **data,
                "references": tuple(data["references"]),
                "phases": tuple(data["phases"]),
                "pain_rules": tuple(data["pain_rules"]),
            }
        )


PROTOCOL_FILE_SCHEMA = ProtocolFileSchema()


def flatten_errors(messages: Any, prefix: str = "") -> dict[str, list[str]]:
    """marshmallow's nested error dict → ``{"phases.2.sessions.0.kind": [...]}``."""
    flat: dict[str, list[str]] = {}
    if isinstance(messages, Mapping):
        for key, value in messages.items():
            path = f"{prefix}.{key}" if prefix and key != "_schema" else (prefix or str(key))
            for sub, msgs in flatten_errors(value, path).items():
                flat.setdefault(sub, []).extend(msgs)
    elif isinstance(messages, list) and all(isinstance(m, str) for m in messages):
        flat[prefix or "_schema"] = list(messages)
    elif isinstance(messages, list):
        for item in messages:
            for sub, msgs in flatten_errors(item, prefix).items():
                flat.setdefault(sub, []).extend(msgs)
    else:
        flat[prefix or "_schema"] = [str(messages)]
    return flat


__all__ = ["PROTOCOL_FILE_SCHEMA", "ProtocolFileSchema", "flatten_errors"]
