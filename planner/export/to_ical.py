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

What each event says — summary, description, categories, span, status,
transparency, alarm, DTSTAMP and SEQUENCE sources — is decided once, by
:func:`session_event_fields` and :func:`phase_event_fields`; the two writers below
differ only in how they serialise those :class:`EventFields`.

icalendar 7 is the model and the parser of record. :func:`render_reference`
builds the calendar with it and lets it serialise (escaping text, folding lines at
75 octets, writing CRLF); that costs ~1 ms per event here, most of it in its
generic property machinery and line folding. :func:`render`, which the service
uses, writes the same bytes directly for exactly the properties we emit — the
same RFC 5545 §3.3.11 escaping, the same folding (never inside a UTF-8 sequence,
nor just after a backslash) and the same property order — at a few µs per event.
``tests/export/test_fast_paths.py`` holds the two byte-identical over random plans
and options, and parses the fast output back with icalendar.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from functools import lru_cache

from icalendar import Alarm, Calendar, Event, InvalidCalendar, vDuration
from icalendar.enums import STATUS, TRANSP

from planner.domain.model import Phase, Plan, Session, SessionKind, SessionStatus, Step
from planner.domain.scheduling import session_uid
from planner.export.wording import (
    DIAGNOSIS_WORDS,
    bullet_lines,
    clean,
    keep,
    names_diagnosis,
    safe_title,
    spell_steps,
)

__all__ = [
    "DIAGNOSIS_WORDS",
    "PRODID",
    "EventFields",
    "FeedOptions",
    "calendar_events",
    "names_diagnosis",
    "phase_event_fields",
    "render",
    "render_reference",
    "session_event_fields",
    "spell_steps",
]

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
    """The plan as iCalendar bytes (UTF-8, CRLF, folded): same plan, same bytes.

    Byte for byte what :func:`render_reference` (icalendar) writes, written directly
    from the same :class:`EventFields`: the constant lines are cached, and so are the
    escaped and folded SUMMARY and DESCRIPTION lines, since a plan repeats a few
    session contents many times.
    """
    options = options or FeedOptions()
    created_text = _utc_text(_utc(plan.created_at))
    stamps: dict[datetime, str] = {}  # the few distinct DTSTAMPs of a plan, formatted once
    out: list[str] = [_calendar_head(options.busy, plan.id)]
    for event in calendar_events(plan, options):
        stamp = _stamp(stamps, event.modified_at, created_text)
        out.append(_event_text(event, stamp, created_text))
    out.append("END:VCALENDAR\r\n")
    return "".join(out).encode()


def _event_text(event: EventFields, stamp: str, created: str) -> str:
    """One VEVENT, properties in icalendar's canonical order."""
    start, end = event.start, event.end
    if isinstance(start, datetime) and isinstance(end, datetime):
        when = f"DTSTART:{_utc_text(start)}\r\nDTEND:{_utc_text(end)}\r\n"
    else:
        when = f"DTSTART;VALUE=DATE:{_date_text(start)}\r\nDTEND;VALUE=DATE:{_date_text(end)}\r\n"
    summary = event.summary
    return (
        "BEGIN:VEVENT\r\n"
        + _text_line("SUMMARY", summary)
        + when
        + f"DTSTAMP:{stamp}\r\n"
        + _uid_line(event.uid)
        + f"SEQUENCE:{_sequence(event.sequence)}\r\n"
        + ("" if event.category is None else _text_line("CATEGORIES", event.category))
        + f"CREATED:{created}\r\n"
        + ("" if event.description is None else _text_line("DESCRIPTION", event.description))
        + f"LAST-MODIFIED:{stamp}\r\n"
        + _STATUS_LINES[event.status]
        + _TRANSP_LINES[event.transparency]
        + (
            ""
            if event.reminder_minutes is None
            else "BEGIN:VALARM\r\nACTION:DISPLAY\r\n"
            + _text_line("DESCRIPTION", summary)
            + _trigger(event.reminder_minutes)
            + "END:VALARM\r\n"
        )
        + "END:VEVENT\r\n"
    )


# --------------------------------------------------------------------------- events


@dataclass(slots=True)
class EventFields:
    """Everything one VEVENT says, decided once so that :func:`render` and
    :func:`render_reference` can differ only in how they write it."""

    uid: str
    summary: str
    #: ``None`` in the busy view: no DESCRIPTION at all.
    description: str | None
    #: The one CATEGORIES value, or ``None`` for none (busy view).
    category: str | None
    #: Aware UTC datetimes for a timed event; dates (``end`` exclusive) for an all-day one.
    start: date | datetime
    end: date | datetime
    status: STATUS
    transparency: TRANSP
    #: A display alarm this long before the start, or ``None`` for no alarm.
    reminder_minutes: int | None
    #: The source of DTSTAMP and LAST-MODIFIED; ``None``: the plan's creation.
    modified_at: datetime | None
    sequence: int


def calendar_events(plan: Plan, options: FeedOptions) -> Iterator[EventFields]:
    """The feed's events in order: the phases (unless busy), then every session the
    options keep."""
    show_cancelled = options.show_cancelled
    if not options.busy:
        for number, phase in enumerate(plan.phases, start=1):
            if phase.status is SessionStatus.CANCELLED and not show_cancelled:
                continue
            yield phase_event_fields(plan, phase, number, options)
    for session in plan.sessions:
        if session.status is SessionStatus.CANCELLED and not show_cancelled:
            continue
        yield session_event_fields(plan, session, options)


def session_event_fields(plan: Plan, session: Session, options: FeedOptions) -> EventFields:
    """A session's VEVENT: timed in UTC (busy time) when it has a start, otherwise
    all-day (free time); a cancelled session is free time either way.

    DTSTAMP and LAST-MODIFIED are when *this session* last changed, so an event that
    did not change between revisions is byte-identical and clients leave it alone.
    """
    start: date | datetime
    end: date | datetime
    cancelled = session.status is SessionStatus.CANCELLED
    if session.start is not None:
        start, end = _timed_span(session, session.start)
        transparency = TRANSP.TRANSPARENT if cancelled else TRANSP.OPAQUE
    else:
        start, end = session.date, session.date + _ONE_DAY
        transparency = TRANSP.TRANSPARENT
    category: str | None
    if options.busy:
        summary, description, category = BUSY_TITLE, None, None
    else:
        full = options.detail == "full"
        summary = session.title if full else safe_title(session.title, _KIND_TITLES[session.kind])
        description = session_description(plan, session, full=full)
        category = session.kind.value
    reminder = options.reminder_minutes
    if not reminder or session.start is None or cancelled:
        reminder = None  # an alarm only before a timed session that still takes place
    return EventFields(  # positional: half the cost of keywords, once per event
        session.uid,
        summary,
        description,
        category,
        start,
        end,
        STATUS.CANCELLED if cancelled else STATUS.CONFIRMED,
        transparency,
        reminder,
        session.modified_at,
        session.sequence,
    )


def phase_event_fields(plan: Plan, phase: Phase, number: int, options: FeedOptions) -> EventFields:
    """An all-day, free-time event spanning the phase, so the runner sees the stage;
    cancelled (with the phase's higher SEQUENCE) once the plan no longer holds it."""
    full = options.detail == "full"
    title = phase.title if full else _phase_title(phase)
    return EventFields(
        uid=_uid(plan.id, f"phase/{phase.key}"),
        summary=f"Phase {number} of {len(plan.phases)}: {title}",
        description=phase_description(plan, phase, number, full=full),
        category="phase",
        start=phase.start_date,
        end=phase.end_date + _ONE_DAY,
        status=STATUS.CANCELLED if phase.status is SessionStatus.CANCELLED else STATUS.CONFIRMED,
        transparency=TRANSP.TRANSPARENT,
        reminder_minutes=None,
        modified_at=phase.modified_at,
        sequence=phase.sequence,
    )


# --------------------------------------------------------------------------- writer
#
# The helpers below reproduce icalendar 7's serialisation of the values we emit
# (vText, vCategory, vDate, vDatetime in UTC, vInt, vDuration) and its Contentline
# folding. Any change here must keep tests/export/test_fast_paths.py green: it is
# the proof that the bytes did not move.

_ONE_DAY = timedelta(days=1)
#: icalendar folds before a character that would make a line 75 octets long, so the
#: first line holds at most 74 octets and each continuation a space plus 74.
_FOLD_OCTETS = 74
_BACKSLASH, _CARET = ord("\\"), ord("^")
#: What :func:`_escape` changes: without one of these a text is written as it is.
_ESCAPED = re.compile(r"[\\;,\r\n]")


def _escape(text: str) -> str:
    """RFC 5545 §3.3.11 TEXT escaping, exactly as icalendar does it (order matters;
    every line ending, including a lone CR, becomes ``\\n``)."""
    return (
        text.replace(r"\N", "\n")
        .replace("\\", "\\\\")
        .replace(";", r"\;")
        .replace(",", r"\,")
        .replace("\r\n", r"\n")
        .replace("\n", r"\n")
        .replace("\r", r"\n")
    )


def _fold(line: str) -> str:
    """One content line folded the way icalendar folds it: at most 74 octets before
    each ``CRLF SPACE``, never inside a UTF-8 sequence, and a fold that would leave a
    backslash (or ``^``) at the end of a line moves it to the next line instead."""
    if len(line) <= _FOLD_OCTETS and line.isascii():
        return line
    data = line.encode()
    size = len(data)
    if size <= _FOLD_OCTETS:
        return line
    parts: list[bytes] = []
    start = 0
    while size - start > _FOLD_OCTETS:
        end = start + _FOLD_OCTETS
        while data[end] & 0xC0 == 0x80:  # a continuation octet: back up to its lead
            end -= 1
        if data[end - 1] in (_BACKSLASH, _CARET) and end - start > 1:
            end -= 1
        parts.append(data[start:end])
        start = end
    parts.append(data[start:])
    return b"\r\n ".join(parts).decode()


@lru_cache(maxsize=4096)
def _text_line(name: str, value: str) -> str:
    """``NAME:escaped value`` folded, with its CRLF. Cached: a plan repeats its
    titles and descriptions, and the description strings themselves come from a cache,
    so their hashes are computed once."""
    return _fold(f"{name}:{_escape(value)}") + "\r\n"


def _uid_line(uid: str) -> str:
    """Not cached: every event has its own UID, which would only churn the cache.
    Our UIDs have nothing to escape, and looking is cheaper than escaping."""
    if _ESCAPED.search(uid) is not None:
        uid = _escape(uid)
    return _fold(f"UID:{uid}") + "\r\n"


_STATUS_LINES = {status: f"STATUS:{status.value}\r\n" for status in STATUS}
_TRANSP_LINES = {transparency: f"TRANSP:{transparency.value}\r\n" for transparency in TRANSP}


def _calendar_head(busy: bool, plan_id: str) -> str:
    return (
        _calendar_properties(busy)
        + _uid_line(_uid(plan_id, "calendar"))
        + f"X-PUBLISHED-TTL:{_duration(REFRESH)}\r\n"
    )


@lru_cache(maxsize=2)
def _calendar_properties(busy: bool) -> str:
    """The VCALENDAR's lines up to its UID (properties in icalendar's canonical order)."""
    name = BUSY_TITLE if busy else CALENDAR_NAME
    return (
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\n"
        + _text_line("PRODID", PRODID)
        + "CALSCALE:GREGORIAN\r\nMETHOD:PUBLISH\r\n"
        + _text_line("DESCRIPTION", CALENDAR_DESCRIPTION)
        + _fold(f"X-WR-CALDESC:{CALENDAR_DESCRIPTION}")  # written unescaped
        + "\r\n"
        + _text_line("NAME", name)
        + _text_line("X-WR-CALNAME", name)
        + f"REFRESH-INTERVAL;VALUE=DURATION:{_duration(REFRESH)}\r\n"
    )


@lru_cache(maxsize=4096)
def _date_text(day: date) -> str:
    """Cached: a plan's events fall on a few hundred days, each written twice."""
    return f"{day.year:04}{day.month:02}{day.day:02}"


def _utc_text(value: datetime) -> str:
    """A UTC datetime as ``YYYYMMDDTHHMMSSZ`` (sub-second digits dropped, as icalendar does)."""
    return (
        f"{value.year:04}{value.month:02}{value.day:02}"
        f"T{value.hour:02}{value.minute:02}{value.second:02}Z"
    )


def _stamp(cache: dict[datetime, str], modified_at: datetime | None, created: str) -> str:
    if not modified_at:
        return created
    text = cache.get(modified_at)
    if text is None:
        text = cache[modified_at] = _utc_text(_utc(modified_at))
    return text


def _sequence(value: int) -> int:
    """SEQUENCE as icalendar accepts it: an int (not a bool) in 0 … 2³¹ − 1."""
    if not isinstance(value, int) or isinstance(value, bool):
        raise TypeError(f"SEQUENCE must be an int, got {value!r}")
    if value < 0:
        raise InvalidCalendar(f"SEQUENCE must be >= 0, got {value}")
    if value > 2_147_483_647:
        raise ValueError(f"SEQUENCE {value} is outside the RFC 5545 range of an INTEGER")
    return int(value)


def _duration(value: timedelta) -> str:
    """A vDuration: ``[-]P[nD][T[nH][nM][nS]]``."""
    sign = ""
    if value.days < 0:
        sign, value = "-", -value
    time_part = ""
    if value.seconds:
        hours, rest = divmod(value.seconds, 3600)
        minutes, seconds = divmod(rest, 60)
        time_part = "T"
        if hours:
            time_part += f"{hours}H"
        if minutes or (hours and seconds):
            time_part += f"{minutes}M"
        if seconds:
            time_part += f"{seconds}S"
    if value.days == 0 and time_part:
        return f"{sign}P{time_part}"
    return f"{sign}P{value.days}D{time_part}"


@lru_cache(maxsize=64)
def _trigger(minutes: int) -> str:
    return f"TRIGGER:{_duration(timedelta(minutes=-minutes))}\r\n"


def render_reference(plan: Plan, options: FeedOptions | None = None) -> bytes:
    """The plan as iCalendar bytes, built and serialised by icalendar.

    The oracle for :func:`render` (which must give the same bytes, much faster):
    tests only. Same plan, same bytes."""
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
    for fields in calendar_events(plan, options):
        calendar.add_component(_event(fields, created))
    data: bytes = calendar.to_ical()
    return data


def _event(fields: EventFields, created: datetime) -> Event:
    """The fields as an icalendar ``Event``, with its alarm if it has one."""
    stamp = _utc(fields.modified_at) if fields.modified_at else created
    event = Event.new(
        uid=fields.uid,
        stamp=stamp,
        created=created,
        last_modified=stamp,
        sequence=fields.sequence,
        summary=fields.summary,
        description=fields.description,
        start=fields.start,
        end=fields.end,
        categories=() if fields.category is None else [fields.category],
        status=fields.status,
        transparency=fields.transparency,
    )
    if fields.reminder_minutes is not None:
        alarm = Alarm()
        alarm.add("ACTION", "DISPLAY")
        alarm.add("DESCRIPTION", fields.summary)
        alarm.add("TRIGGER", timedelta(minutes=-fields.reminder_minutes))
        event.add_component(alarm)
    return event


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
    fit = keep if full else clean
    blocks: list[str] = []
    notes = " ".join(fit([notes]))
    if notes:
        blocks.append(notes)
    if steps:
        blocks.append(spell_steps(steps, repeat))
    elif duration_min and kind is not SessionKind.REVIEW:
        blocks.append(f"About {duration_min} min.")
    if kind is SessionKind.REVIEW:
        blocks.append("\n".join(bullet_lines("Checklist:", fit(criteria))))
    if kind in _LOADING_KINDS:
        blocks.append("\n".join(bullet_lines("If it hurts:", fit(pain_rules))))
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
    return _phase_text(
        full,
        f"Phase {number} of {len(plan.phases)}, {phase.start_date.isoformat()} to "
        f"{phase.end_date.isoformat()} (projected).",
        injury_summary(plan) if full else "",
        phase.goals,
        phase.advance_criteria,
        phase.guidance,
    )


@lru_cache(maxsize=1024)
def _phase_text(
    full: bool,
    heading: str,
    injury: str,
    goals: tuple[str, ...],
    advance_criteria: tuple[str, ...],
    guidance: tuple[str, ...],
) -> str:
    """Cached: the protocol texts are the same for every plan of a protocol."""
    fit = keep if full else clean
    blocks = [
        heading,
        injury,
        "\n".join(bullet_lines("Goals:", fit(goals))),
        "\n".join(bullet_lines("Move on when:", fit(advance_criteria))),
        "\n".join(bullet_lines("How:", fit(guidance))),
        DISCLAIMER,
    ]
    return "\n\n".join(block for block in blocks if block)


def _phase_title(phase: Phase) -> str:
    return safe_title(phase.title, phase.key.replace("_", " ").capitalize())


# --------------------------------------------------------------------------- values


def _uid(plan_id: str, name: str) -> str:
    """A UID derived from the plan id, in the same namespace as session UIDs:
    ``uuid5(UID_NAMESPACE, f"{plan_id}/{name}")@stride-back``."""
    return session_uid(plan_id, name)


def _timed_span(session: Session, start: datetime) -> tuple[datetime, datetime]:
    """A timed session's start and end in UTC; without an end it lasts its duration
    (30 minutes when it has none)."""
    begin = _session_utc(start, session, "start")
    if session.end is not None:
        return begin, _session_utc(session.end, session, "end")
    return begin, begin + timedelta(minutes=session.duration_min or 30)


def _session_utc(value: datetime, session: Session, which: str) -> datetime:
    """A session time in UTC. A naive one is refused: its zone is unknown and
    guessing would move the runner's session. (The message is built only then.)"""
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"session {session.uid} {which} must be timezone-aware, got {value!r}")
    return value.astimezone(UTC)


def _utc(value: datetime) -> datetime:
    """An aware datetime in UTC. Plan timestamps may arrive naive from a store that
    drops the offset; they are UTC by convention."""
    if value.tzinfo is None or value.utcoffset() is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)
