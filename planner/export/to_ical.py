"""Render a :class:`~planner.domain.model.Plan` as an RFC 5545 iCalendar feed.

The calendar is what a runner actually lives with, often on a phone that shows
event titles on the lock screen and syncs to third-party servers. So it follows
design.md §5:

* one VEVENT per session (UID = ``session.uid``, so revisions update events in
  place) and one all-day VEVENT per phase;
* timed sessions are written in UTC (``…Z``). Every session is a single instance
  whose ``start`` already holds the runner's local wall time, so converting each
  instant to UTC keeps 07:00 local across DST changes without a VTIMEZONE;
* untimed sessions are all-day (``VALUE=DATE``, exclusive ``DTEND``, no TZID);
* descriptions can be followed without the app: steps spelled out, the
  clinician's criteria, the pain rules, and a reminder that a clinician decides;
* the diagnosis is never named: any protocol sentence that names it is left out
  (see :data:`DIAGNOSIS_WORDS`), because a feed is health data;
* the output is byte-stable: timestamps and identities come from the plan, never
  from a clock or a random source, so stored bytes and ETags stay valid.

icalendar 7 is the model and serialiser (it escapes text, folds lines at 75
octets and writes CRLF).
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterable, Sequence
from datetime import UTC, date, datetime, timedelta
from functools import lru_cache

from icalendar import Calendar, Event, vDuration

from planner.domain.model import Phase, Plan, Session, SessionKind, Step
from planner.domain.scheduling import UID_DOMAIN, UID_NAMESPACE

__all__ = ["DIAGNOSIS_WORDS", "PRODID", "names_diagnosis", "render"]

PRODID = "-//stride-back//Return-to-run planner//EN"
CALENDAR_NAME = "Return to running"
#: No commas or semicolons: icalendar writes X-WR-CALDESC unescaped.
CALENDAR_DESCRIPTION = (
    "Your dated return-to-running plan: one event per session and one all-day event "
    "per phase. The dates are a projection and not a promise: each step waits for "
    "pain-free sessions and your clinician's agreement."
)
#: How often clients should re-fetch the feed (RFC 7986 and the Outlook/Google hint).
REFRESH = timedelta(hours=6)
DISCLAIMER = "This plan does not replace your clinician's advice."

#: Words that would reveal the diagnosis on a lock screen or a synced server.
#: Matched case-insensitively as substrings, so "fracture-line" and "Stress" count.
DIAGNOSIS_WORDS: tuple[str, ...] = ("femoral", "fracture", "stress", "neck", "injury")
_DIAGNOSIS = re.compile("|".join(map(re.escape, DIAGNOSIS_WORDS)), re.IGNORECASE)
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")
_PARENTHESIS = re.compile(r"\s*\([^()]*\)")

#: Neutral titles used when a protocol title would name the diagnosis.
_KIND_TITLES: dict[SessionKind, str] = {
    SessionKind.CROSS_TRAINING: "Cross-training",
    SessionKind.STRENGTH: "Strength",
    SessionKind.WALK: "Walk",
    SessionKind.RUN_WALK: "Run/walk",
    SessionKind.RUN: "Run",
    SessionKind.REVIEW: "Clinical review",
}
#: Kinds whose descriptions carry the pain rules: the runner is on their feet.
_LOADING_KINDS = frozenset({SessionKind.WALK, SessionKind.RUN_WALK, SessionKind.RUN})


def render(plan: Plan) -> bytes:
    """The plan as iCalendar bytes (UTF-8, CRLF, folded): same plan, same bytes."""
    calendar = Calendar.new(
        prodid=PRODID,
        name=CALENDAR_NAME,
        description=CALENDAR_DESCRIPTION,
        method="PUBLISH",
        calscale="GREGORIAN",
        uid=_uid(plan.id, "calendar"),
        refresh_interval=REFRESH,
    )
    # RFC 7986 requires the VALUE parameter on REFRESH-INTERVAL; icalendar omits it.
    calendar["REFRESH-INTERVAL"].params["VALUE"] = "DURATION"
    calendar.add("X-PUBLISHED-TTL", vDuration(REFRESH))

    stamp = _utc(plan.updated_at)
    created = _utc(plan.created_at)
    for number, phase in enumerate(plan.phases, start=1):
        calendar.add_component(_phase_event(plan, phase, number, stamp, created))
    for session in plan.sessions:
        calendar.add_component(_session_event(plan, session, stamp, created))
    return calendar.to_ical()


# --------------------------------------------------------------------------- events


def _session_event(plan: Plan, session: Session, stamp: datetime, created: datetime) -> Event:
    """A session's VEVENT: timed in UTC when it has a start, otherwise all-day."""
    start: date | datetime
    end: date | datetime
    if session.start is not None:
        start = _utc(session.start, what=f"session {session.uid} start")
        end = (
            _utc(session.end, what=f"session {session.uid} end")
            if session.end is not None
            else start + timedelta(minutes=session.duration_min or 30)
        )
        transparency = "OPAQUE"
    else:
        start, end = session.date, session.date + timedelta(days=1)
        transparency = "TRANSPARENT"
    return Event.new(
        uid=session.uid,
        stamp=stamp,
        created=created,
        last_modified=stamp,
        sequence=session.sequence,
        summary=_safe_title(session.title, _KIND_TITLES[session.kind]),
        description=session_description(plan, session),
        start=start,
        end=end,
        categories=[session.kind.value],
        status="CONFIRMED",
        transparency=transparency,
    )


def _phase_event(
    plan: Plan, phase: Phase, number: int, stamp: datetime, created: datetime
) -> Event:
    """An all-day, free-time event spanning the phase, so the runner sees the stage."""
    return Event.new(
        uid=_uid(plan.id, f"phase/{phase.key}"),
        stamp=stamp,
        created=created,
        last_modified=stamp,
        sequence=0,
        summary=f"Phase {number} of {len(plan.phases)}: {_phase_title(phase)}",
        description=phase_description(plan, phase, number),
        start=phase.start_date,
        end=phase.end_date + timedelta(days=1),
        categories=["phase"],
        status="CONFIRMED",
        transparency="TRANSPARENT",
    )


# --------------------------------------------------------------------------- texts


def session_description(plan: Plan, session: Session) -> str:
    """What to do, what the clinician checks and when to stop, in plain text."""
    return _describe(
        session.kind,
        session.notes,
        session.steps,
        session.repeat,
        session.duration_min,
        session.criteria,
        plan.pain_rules,
    )


@lru_cache(maxsize=1024)
def _describe(
    kind: SessionKind,
    notes: str,
    steps: tuple[Step, ...],
    repeat: int | None,
    duration_min: int | None,
    criteria: tuple[str, ...],
    pain_rules: tuple[str, ...],
) -> str:
    """Cached because a plan repeats the same few session contents many times."""
    blocks: list[str] = []
    notes = " ".join(_clean([notes]))
    if notes:
        blocks.append(notes)
    if steps:
        blocks.append(spell_steps(steps, repeat))
    elif duration_min and kind is not SessionKind.REVIEW:
        blocks.append(f"About {duration_min} min.")
    if kind is SessionKind.REVIEW:
        blocks.append(_bullets("Checklist:", _clean(criteria)))
    if kind in _LOADING_KINDS:
        blocks.append(_bullets("If it hurts:", _clean(pain_rules)))
    blocks.append(DISCLAIMER)
    return "\n\n".join(block for block in blocks if block)


def phase_description(plan: Plan, phase: Phase, number: int) -> str:
    """The phase's goals, the criteria to move on and how to go about it."""
    last = phase.end_date.isoformat()
    blocks = [
        f"Phase {number} of {len(plan.phases)}, {phase.start_date.isoformat()} to {last} "
        "(projected).",
        _bullets("Goals:", _clean(phase.goals)),
        _bullets("Move on when:", _clean(phase.advance_criteria)),
        _bullets("How:", _clean(phase.guidance)),
        DISCLAIMER,
    ]
    return "\n\n".join(block for block in blocks if block)


def spell_steps(steps: Sequence[Step], repeat: int | None) -> str:
    """Interval steps in words, e.g. "Walk 5 min, then run 1 min — repeat 5 times
    (30 min in all)." so the session can be done from the calendar alone."""
    parts = [f"{step.activity.replace('_', ' ')} {step.minutes} min" for step in steps]
    text = ", then ".join(parts)
    text = text[:1].upper() + text[1:]
    rounds = repeat if repeat and repeat > 1 else 1
    total = sum(step.minutes for step in steps) * rounds
    if rounds > 1:
        return f"{text} — repeat {rounds} times ({total} min in all)."
    if len(steps) > 1:
        return f"{text} ({total} min in all)."
    return f"{text}."


def names_diagnosis(text: str) -> bool:
    """Whether the text contains one of :data:`DIAGNOSIS_WORDS`."""
    return _DIAGNOSIS.search(text) is not None


def _bullets(heading: str, items: Sequence[str]) -> str:
    return heading + "".join(f"\n- {item}" for item in items) if items else ""


def _sentences(text: str) -> list[str]:
    return [part for part in _SENTENCE_END.split(text.strip()) if part]


def _clean(texts: Iterable[str]) -> list[str]:
    """The texts with every sentence that names the diagnosis left out. A
    parenthesis that names it is cut first, so "No progression on imaging (… fracture
    line …)" keeps its point; a text left empty is dropped."""
    kept: list[str] = []
    for text in texts:
        sentences = [_strip_naming_parentheses(part) for part in _sentences(text)]
        cleaned = " ".join(part for part in sentences if part and not names_diagnosis(part))
        if cleaned:
            kept.append(cleaned)
    return kept


def _strip_naming_parentheses(sentence: str) -> str:
    if not names_diagnosis(sentence):
        return sentence
    return _PARENTHESIS.sub(lambda m: "" if names_diagnosis(m.group()) else m.group(), sentence)


def _safe_title(title: str, fallback: str) -> str:
    cleaned = _clean([title])
    return cleaned[0] if cleaned else fallback


def _phase_title(phase: Phase) -> str:
    return _safe_title(phase.title, phase.key.replace("_", " ").capitalize())


# --------------------------------------------------------------------------- values


def _uid(plan_id: str, name: str) -> str:
    """A UID derived from the plan id, in the same namespace as session UIDs."""
    return f"{uuid.uuid5(UID_NAMESPACE, f'{plan_id}/{name}')}@{UID_DOMAIN}"


def _utc(value: datetime, what: str = "") -> datetime:
    """An aware datetime in UTC. Plan timestamps may arrive naive from a store that
    drops the offset; they are UTC by convention. A naive session time is refused:
    its zone is unknown and guessing would move the runner's session."""
    if value.tzinfo is None or value.utcoffset() is None:
        if what:
            raise ValueError(f"{what} must be timezone-aware, got {value!r}")
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)
