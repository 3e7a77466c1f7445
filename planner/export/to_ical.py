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
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from functools import lru_cache

from icalendar import Alarm, Calendar, Event, vDuration

from planner.domain.model import Phase, Plan, Session, SessionKind, SessionStatus, Step
from planner.domain.scheduling import UID_DOMAIN, UID_NAMESPACE

__all__ = ["DIAGNOSIS_WORDS", "PRODID", "FeedOptions", "names_diagnosis", "render"]

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


@dataclass(frozen=True, slots=True)
class FeedOptions:
    """How much the calendar may say, chosen per plan (design.md §5, privacy).

    ``detail``: ``activity`` (default) names the activity, never the diagnosis;
    ``full`` keeps every protocol text. ``busy``: the work-calendar view — every
    session is just "Training", with no description and no phase events.
    ``reminder_minutes``: a display alarm that long before each timed session.
    ``show_cancelled``: keep cancelled sessions as ``STATUS:CANCELLED`` (so
    subscribed calendars update them in place) rather than leaving them out.
    """

    detail: str = "activity"
    busy: bool = False
    reminder_minutes: int | None = None
    show_cancelled: bool = True


BUSY_TITLE = "Training"


def render(plan: Plan, options: FeedOptions | None = None) -> bytes:
    """The plan as iCalendar bytes (UTF-8, CRLF, folded): same plan, same bytes."""
    options = options or FeedOptions()
    calendar = Calendar.new(
        prodid=PRODID,
        name=BUSY_TITLE if options.busy else CALENDAR_NAME,
        description=CALENDAR_DESCRIPTION,
        method="PUBLISH",
        calscale="GREGORIAN",
        uid=_uid(plan.id, "calendar"),
        refresh_interval=REFRESH,
    )
    # RFC 7986 requires the VALUE parameter on REFRESH-INTERVAL; icalendar omits it.
    calendar["REFRESH-INTERVAL"].params["VALUE"] = "DURATION"
    calendar.add("X-PUBLISHED-TTL", vDuration(REFRESH))

    created = _utc(plan.created_at)
    if not options.busy:
        for number, phase in enumerate(plan.phases, start=1):
            calendar.add_component(_phase_event(plan, phase, number, created, options))
    for session in plan.sessions:
        if session.status is SessionStatus.CANCELLED and not options.show_cancelled:
            continue
        calendar.add_component(_session_event(plan, session, created, options))
    return calendar.to_ical()


# --------------------------------------------------------------------------- events


def _session_event(plan: Plan, session: Session, created: datetime, options: FeedOptions) -> Event:
    """A session's VEVENT: timed in UTC when it has a start, otherwise all-day.

    DTSTAMP and LAST-MODIFIED are when *this session* last changed, so an event that
    did not change between revisions is byte-identical and clients leave it alone.
    """
    stamp = _utc(session.modified_at) if session.modified_at else created
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
    cancelled = session.status is SessionStatus.CANCELLED
    if options.busy:
        summary, description = BUSY_TITLE, None
    elif options.detail == "full":
        summary, description = session.title, session_description(plan, session, full=True)
    else:
        summary = _safe_title(session.title, _KIND_TITLES[session.kind])
        description = session_description(plan, session)
    event = Event.new(
        uid=session.uid,
        stamp=stamp,
        created=created,
        last_modified=stamp,
        sequence=session.sequence,
        summary=summary,
        description=description,
        start=start,
        end=end,
        categories=None if options.busy else [session.kind.value],
        status="CANCELLED" if cancelled else "CONFIRMED",
        transparency=transparency,
    )
    if options.reminder_minutes and session.start is not None and not cancelled:
        alarm = Alarm()
        alarm.add("ACTION", "DISPLAY")
        alarm.add("DESCRIPTION", summary)
        alarm.add("TRIGGER", timedelta(minutes=-options.reminder_minutes))
        event.add_component(alarm)
    return event


def _phase_event(
    plan: Plan, phase: Phase, number: int, created: datetime, options: FeedOptions
) -> Event:
    """An all-day, free-time event spanning the phase, so the runner sees the stage."""
    stamp = _utc(phase.modified_at) if phase.modified_at else created
    full = options.detail == "full"
    title = phase.title if full else _phase_title(phase)
    return Event.new(
        uid=_uid(plan.id, f"phase/{phase.key}"),
        stamp=stamp,
        created=created,
        last_modified=stamp,
        sequence=phase.sequence,
        summary=f"Phase {number} of {len(plan.phases)}: {title}",
        description=phase_description(plan, phase, number, full=full),
        start=phase.start_date,
        end=phase.end_date + timedelta(days=1),
        categories=["phase"],
        status="CONFIRMED",
        transparency="TRANSPARENT",
    )


# --------------------------------------------------------------------------- texts


def session_description(plan: Plan, session: Session, *, full: bool = False) -> str:
    """What to do, what the clinician checks and when to stop, in plain text."""
    return _describe(
        full,
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
    full: bool,
    kind: SessionKind,
    notes: str,
    steps: tuple[Step, ...],
    repeat: int | None,
    duration_min: int | None,
    criteria: tuple[str, ...],
    pain_rules: tuple[str, ...],
) -> str:
    """Cached because a plan repeats the same few session contents many times."""
    clean = _keep if full else _clean
    blocks: list[str] = []
    notes = " ".join(clean([notes]))
    if notes:
        blocks.append(notes)
    if steps:
        blocks.append(spell_steps(steps, repeat))
    elif duration_min and kind is not SessionKind.REVIEW:
        blocks.append(f"About {duration_min} min.")
    if kind is SessionKind.REVIEW:
        blocks.append(_bullets("Checklist:", clean(criteria)))
    if kind in _LOADING_KINDS:
        blocks.append(_bullets("If it hurts:", clean(pain_rules)))
    blocks.append(DISCLAIMER)
    return "\n\n".join(block for block in blocks if block)


def injury_summary(plan: Plan) -> str:
    """The diagnosis in words — only for plans that opted in to full detail."""
    injury = plan.request.injury
    words = [injury.site.value.replace("_", " "), "bone stress injury"]
    if injury.type is not None:
        words.insert(0, f"{injury.type.value}-side")
    if injury.laterality is not None:
        words.append(f"({injury.laterality.value})")
    text = " ".join(words)
    if injury.fracture_line_pct:
        text += f", fracture line {injury.fracture_line_pct}% of the width"
    elif injury.fracture_line:
        text += ", fracture line on MRI"
    return text[:1].upper() + text[1:] + "."


def phase_description(plan: Plan, phase: Phase, number: int, *, full: bool = False) -> str:
    """The phase's goals, the criteria to move on and how to go about it."""
    clean = _keep if full else _clean
    last = phase.end_date.isoformat()
    blocks = [
        f"Phase {number} of {len(plan.phases)}, {phase.start_date.isoformat()} to {last} "
        "(projected).",
        injury_summary(plan) if full else "",
        _bullets("Goals:", clean(phase.goals)),
        _bullets("Move on when:", clean(phase.advance_criteria)),
        _bullets("How:", clean(phase.guidance)),
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


def _keep(texts: Iterable[str]) -> list[str]:
    """Full detail: every text as written (the plan opted in to naming the diagnosis)."""
    return [text for text in texts if text]


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
