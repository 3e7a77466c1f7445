"""The runner's page ``/p/<token>``: the plan at a glance on a phone, no API key.

The token is the plan's feed token, so the page is exactly as secret as the calendar
feed: rotating or revoking the token takes the page down with the feed, and a "busy"
token (work calendars) does not open it. Like the feed, the page is health data:
unless the plan's feed ``detail`` is ``full`` it never names the diagnosis, so alerts
are shown as neutral texts per code and protocol sentences that name it are left out.

Everything the page needs is served from here (``/p/static/…``) under a strict
Content-Security-Policy: no inline script or style, no third-party hosts.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from functools import lru_cache
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from flask import Response, render_template, send_from_directory, url_for
from flask.views import MethodView
from flask_smorest import Blueprint

from planner import links
from planner.domain.model import RedFlag, Step
from planner.export.wording import clean_texts, safe_title, spell_steps
from planner.service import FeedNotFound
from planner.web.api import errors
from planner.web.common import planner
from planner.web.feeds import subscribe_links

blp = Blueprint(
    "page",
    __name__,
    url_prefix=links.PAGES,
    template_folder="templates",
    description="The runner's plan page: no API key, the feed token is the secret.",
)

STATIC_DIR = Path(__file__).parent / "static"
#: Static assets are addressed with a content hash (``?v=``), so they may be cached.
ASSET_MAX_AGE = 7 * 24 * 3600

#: Everything from this origin only; no inline script or style, no plugins, no framing.
CONTENT_SECURITY_POLICY = "; ".join(
    (
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'none'",
        "frame-ancestors 'none'",
    )
)
PAGE_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    # The URL is a capability: never cached, never sent on as a referrer, never indexed.
    "Cache-Control": "no-store",
    "Referrer-Policy": "no-referrer",
    "X-Robots-Tag": "noindex, nofollow",
    "X-Content-Type-Options": "nosniff",
}

#: How many days the "This week" list covers, today included.
WEEK_DAYS = 7

#: Neutral text per alert code, shown unless the plan opted in to full detail: the
#: protocol's own messages may name the diagnosis. Each must pass ``names_diagnosis``.
NEUTRAL_ALERTS: dict[str, str] = {
    "emergency_care": (
        "Get emergency care now: go to an emergency department and do not put weight on the leg."
    ),
    "urgent_surgical_referral": (
        "See an orthopaedic specialist today. Until then keep all weight off the leg "
        "and use crutches."
    ),
    "stop_and_refer": (
        "You reported a warning sign, so walking, running and leg exercise are stopped. "
        "See your clinician urgently, today if you can; if you cannot put weight on the "
        "leg, go to an emergency department now."
    ),
    "bone_health_referral": (
        "Before running resumes, see a sports physician and a dietitian about bone "
        "health and nutrition, and get medical clearance."
    ),
    "avoid_nsaids": (
        "Avoid anti-inflammatory painkillers (such as ibuprofen or naproxen) unless a "
        "clinician advises them. Ask your clinician about pain relief."
    ),
    "specialist_referral": (
        "See a specialist before you do more: no running is planned until they have "
        "assessed you and your clinician records their decision."
    ),
    "triad_clearance": (
        "Running starts only after a medical clearance review of your energy intake and "
        "bone health; each walk/run level needs one more pain-free session."
    ),
    "triad_restricted": (
        "Running is on hold until a sports physician clears you: see them about energy "
        "intake and bone health before any running is planned."
    ),
}
NEUTRAL_ALERT_FALLBACK = "Your clinician has added a note to this plan: ask them about it."
SEVERITY_ORDER = {"urgent": 0, "warning": 1, "info": 2}
SEVERITY_LABELS = {"urgent": "Urgent", "warning": "Action needed", "info": "Note"}
#: Shown when the plan carries no disclaimer of its own (every plan should).
DISCLAIMER = "This plan does not replace your clinician: follow their advice when it differs."

#: The check-in red flags in the runner's words. The page lists those of them that mean
#: "call the clinician the same day"; the emergency ones (:data:`EMERGENCY_FLAGS`) are
#: said once, as :data:`EMERGENCY_TEXT` (domain.md A2 rule 1), never as a same-day call.
RED_FLAG_TEXTS: dict[RedFlag, str] = {
    RedFlag.PAIN_AT_REST: "Pain at rest",
    RedFlag.NIGHT_PAIN: "Pain at night",
    RedFlag.PAIN_UNLOADING: "Pain when you take weight off the leg",
    RedFlag.LIMP: "A limp",
    RedFlag.CANNOT_BEAR_WEIGHT: "Being unable to put weight on the leg",
    RedFlag.PAIN_WORSENING: "Pain that gets worse despite rest",
}
#: Emergency signs: not a same-day call but an emergency department now.
EMERGENCY_FLAGS = frozenset({RedFlag.CANNOT_BEAR_WEIGHT})
EMERGENCY_TEXT = (
    "If you cannot put weight on the leg, or the pain is severe, do not walk on it: go to "
    "an emergency department now."
)

KIND_LABELS = {
    "cross_training": "Cross-training",
    "strength": "Strength",
    "walk": "Walk",
    "run_walk": "Run/walk",
    "run": "Run",
    "review": "Clinical review",
}
#: Sessions that load the leg: on hold while the plan is stopped.
LOADING_KINDS = frozenset({"walk", "run_walk", "run", "strength"})
STATUS_LABELS = {"active": "Active", "stopped": "On hold", "cancelled": "Cancelled"}

# ------------------------------------------------------------------------- timeline geometry

#: SVG user units; at 375 px wide one unit is about one CSS pixel.
SVG_WIDTH = 340
SVG_HEIGHT = 92
BAR_X = 4
BAR_WIDTH = SVG_WIDTH - 2 * BAR_X
BAR_Y = 32
BAR_HEIGHT = 30
BAR_GAP = 1.5
#: Narrower bars carry no number inside (the list below the chart names every phase).
MIN_LABELLED_BAR = 14


def timeline_x(day: date, start: date, total_days: int) -> float:
    """Where a day begins on the timeline, proportional to the days since the start."""
    return round(BAR_X + BAR_WIDTH * (day - start).days / total_days, 2)


# ------------------------------------------------------------------------- view model


@dataclass(frozen=True)
class PhaseView:
    number: int
    key: str
    title: str
    start: date
    end: date
    days: int
    x: float
    width: float
    current: bool
    past: bool
    goals: list[str] = field(default_factory=list)
    guidance: list[str] = field(default_factory=list)
    advance_criteria: list[str] = field(default_factory=list)

    @property
    def label_x(self) -> float:
        return round(self.x + self.width / 2, 2)

    @property
    def labelled(self) -> bool:
        return self.width >= MIN_LABELLED_BAR


@dataclass(frozen=True)
class SessionView:
    uid: str
    day: date
    time: str | None
    start: str | None
    kind: str
    kind_label: str
    title: str
    duration_min: int | None
    steps_text: str | None
    notes: list[str]
    criteria: list[str]
    cancelled: bool
    #: Walking or running on a stopped plan: not to be done until a clinician says so.
    on_hold: bool
    #: A timed session whose end has passed (today's 07:00 walk at 18:00).
    over: bool
    when: str

    @property
    def doable(self) -> bool:
        return not (self.cancelled or self.on_hold or self.over)


@dataclass(frozen=True)
class AlertView:
    code: str
    severity: str
    label: str
    text: str


def long_date(day: date) -> str:
    """ "Friday 5 February 2027": unambiguous in every English-speaking country."""
    return f"{day:%A} {day.day} {day:%B %Y}"


def short_date(day: date) -> str:
    return f"{day:%a} {day.day} {day:%b}"


def range_text(start: date, end: date) -> str:
    """ "20 Nov – 31 Dec 2026" (the year once when both ends share it)."""
    if start.year == end.year:
        return f"{start.day} {start:%b} – {end.day} {end:%b %Y}"
    return f"{start.day} {start:%b %Y} – {end.day} {end:%b %Y}"


def relative_day(day: date, today: date) -> str:
    delta = (day - today).days
    if delta == 0:
        return "Today"
    if delta == 1:
        return "Tomorrow"
    return f"In {delta} days"


def _optional_date(value: str | None) -> date | None:
    return date.fromisoformat(value) if value else None


def alert_views(alerts: Sequence[Mapping[str, Any]], *, full: bool) -> list[AlertView]:
    """Urgent first; the protocol's wording only when the plan shows full detail."""
    ordered = sorted(alerts, key=lambda a: SEVERITY_ORDER.get(a.get("severity", ""), 3))
    views = []
    for alert in ordered:
        code = alert.get("code", "")
        severity = alert.get("severity", "info")
        text = (
            alert.get("message", "") if full else NEUTRAL_ALERTS.get(code, NEUTRAL_ALERT_FALLBACK)
        )
        views.append(
            AlertView(
                code=code,
                severity=severity if severity in SEVERITY_ORDER else "info",
                label=SEVERITY_LABELS.get(severity, "Note"),
                text=text,
            )
        )
    return views


def session_view(
    session: Mapping[str, Any], tz: ZoneInfo, now: datetime, *, status: str, full: bool
) -> SessionView:
    """One session in the runner's words and local time.

    The plan's own status wins over the session's: on a cancelled plan nothing is to be
    done, and on a stopped one nothing that loads the leg (the domain cancels those
    from the day of the stop; plans stored before that still need this).
    """
    today = now.astimezone(tz).date()
    day = date.fromisoformat(session["date"])
    kind = session.get("kind", "")
    kind_label = KIND_LABELS.get(kind, kind.replace("_", " ").capitalize())
    start = session.get("start")
    local = datetime.fromisoformat(start).astimezone(tz) if start else None
    end = session.get("end")
    if local is None:
        over = False
    elif end:
        over = datetime.fromisoformat(end) <= now
    else:
        over = local + timedelta(minutes=session.get("duration_min") or 30) <= now
    steps = [Step(activity=s["activity"], minutes=s["minutes"]) for s in session.get("steps") or ()]
    duration = session.get("duration_min")
    if steps:
        steps_text: str | None = spell_steps(steps, session.get("repeat"))
    elif duration and kind != "review":
        steps_text = f"About {duration} min."
    else:
        steps_text = None
    return SessionView(
        uid=session["uid"],
        day=day,
        time=local.strftime("%H:%M") if local else None,
        start=local.isoformat(timespec="minutes") if local else None,
        kind=kind,
        kind_label=kind_label,
        title=safe_title(session.get("title") or "", kind_label, full=full),
        duration_min=duration,
        steps_text=steps_text,
        notes=clean_texts([session.get("notes") or ""], full=full),
        criteria=clean_texts(session.get("criteria") or (), full=full),
        cancelled=session.get("status") == "cancelled" or status == "cancelled",
        on_hold=status == "stopped" and kind in LOADING_KINDS,
        over=over,
        when=relative_day(day, today),
    )


def phase_views(phases: Sequence[Mapping[str, Any]], today: date, *, full: bool) -> list[PhaseView]:
    """The phases laid out on the timeline: widths proportional to their days."""
    if not phases:
        return []
    first = date.fromisoformat(phases[0]["start_date"])
    last = date.fromisoformat(phases[-1]["end_date"])
    total = (last - first).days + 1
    views = []
    for number, phase in enumerate(phases, start=1):
        start = date.fromisoformat(phase["start_date"])
        end = date.fromisoformat(phase["end_date"])
        x = timeline_x(start, first, total)
        right = timeline_x(end + timedelta(days=1), first, total)
        fallback = phase.get("key", "").replace("_", " ").capitalize() or f"Phase {number}"
        views.append(
            PhaseView(
                number=number,
                key=phase.get("key", ""),
                title=safe_title(phase.get("title") or "", fallback, full=full),
                start=start,
                end=end,
                days=(end - start).days + 1,
                x=x,
                width=round(max(right - x - BAR_GAP, 1.0), 2),
                current=start <= today <= end,
                past=end < today,
                goals=clean_texts(phase.get("goals") or (), full=full),
                guidance=clean_texts(phase.get("guidance") or (), full=full),
                advance_criteria=clean_texts(phase.get("advance_criteria") or (), full=full),
            )
        )
    return views


def timeline(phases: list[PhaseView], today: date) -> dict[str, Any] | None:
    """Geometry and text alternative of the SVG timeline, with the "today" marker."""
    if not phases:
        return None
    first, last = phases[0].start, phases[-1].end
    total = (last - first).days + 1
    marker = None
    if first <= today <= last:
        x = timeline_x(today, first, total)
        anchor = "start" if x < 24 else "end" if x > SVG_WIDTH - 24 else "middle"
        marker = {"x": x, "anchor": anchor}
    current = next((p for p in phases if p.current), None)
    if current is not None:
        where = (
            f"Today, {long_date(today)}, is in phase {current.number} of {len(phases)}: "
            f"{current.title}."
        )
    elif today < first:
        where = f"The plan starts on {long_date(first)}."
    else:
        where = f"The plan ended on {long_date(last)}."
    return {
        "width": SVG_WIDTH,
        "height": SVG_HEIGHT,
        "bar_y": BAR_Y,
        "bar_height": BAR_HEIGHT,
        "label_y": BAR_Y + BAR_HEIGHT / 2,
        "marker": marker,
        "marker_top": BAR_Y - 8,
        "marker_bottom": BAR_Y + BAR_HEIGHT + 8,
        "first": first,
        "last": last,
        "total_days": total,
        "description": (
            f"{len(phases)} phase{'s' if len(phases) != 1 else ''} from {long_date(first)} "
            f"to {long_date(last)}, each as wide as it is long. {where}"
        ),
    }


def page_context(
    document: Mapping[str, Any], links: Mapping[str, Any], now: datetime
) -> dict[str, Any]:
    """Everything the template shows, computed from the served plan document.

    Pure (no request, no clock) so it is easy to test and reason about: ``now`` is the
    planner's clock, turned into "today" in the plan's own time zone.
    """
    tz = ZoneInfo(document.get("timezone") or "UTC")
    today = now.astimezone(tz).date()
    full = (document.get("feed") or {}).get("detail") == "full"
    status = document.get("status", "active")
    phases = phase_views(document.get("phases") or (), today, full=full)
    sessions = [
        session_view(s, tz, now, status=status, full=full)
        for s in document.get("sessions") or ()
        if date.fromisoformat(s["date"]) >= today
    ]
    doable = [s for s in sessions if s.doable]
    if status == "stopped":  # the urgent review is what matters now, whatever comes first
        doable.sort(key=lambda s: s.kind != "review")
    next_session = doable[0] if doable else None
    week_end = today + timedelta(days=WEEK_DAYS - 1)
    week = [s for s in sessions if s.day <= week_end]
    expected = document.get("expected_return_to_run_date")
    feed = links.get("feed")
    protocol = document.get("protocol") or {}
    return {
        "full": full,
        "status": status,
        "status_label": STATUS_LABELS.get(status, "Unknown"),
        "stopped_on": _optional_date((document.get("progress") or {}).get("stopped_on")),
        "cancelled_on": _optional_date((document.get("progress") or {}).get("cancelled_on")),
        "today": today,
        "timezone": str(tz),
        "alerts": alert_views(document.get("alerts") or (), full=full),
        "phases": phases,
        "current_phase": next((p for p in phases if p.current), None),
        "timeline": timeline(phases, today),
        "next_session": next_session,
        "week": week,
        "week_end": week_end,
        "expected_return": date.fromisoformat(expected) if expected else None,
        "pain_rules": clean_texts(document.get("pain_rules") or (), full=full),
        "red_flags": [RED_FLAG_TEXTS[flag] for flag in RedFlag if flag not in EMERGENCY_FLAGS],
        "emergency_text": EMERGENCY_TEXT,
        "disclaimer": " ".join(clean_texts([document.get("disclaimer") or ""], full=full))
        or DISCLAIMER,
        "protocol_title": protocol.get("title") if full else None,
        "links": {
            "webcal": links.get("webcal"),
            "google": links.get("google"),
            "feed": feed,
            "download": f"{feed}?download=1" if feed else None,
        },
    }


# ------------------------------------------------------------------------- rendering


@lru_cache(maxsize=16)
def _asset_version(filename: str) -> str:
    """A short content hash, so a changed asset gets a new URL and old ones may be cached."""
    return hashlib.sha256((STATIC_DIR / filename).read_bytes()).hexdigest()[:12]


def asset_url(filename: str) -> str:
    return url_for("page.asset", filename=filename, v=_asset_version(filename))


TEMPLATE_HELPERS = {
    "asset_url": asset_url,
    "long_date": long_date,
    "short_date": short_date,
    "range_text": range_text,
}


def _html(body: str, status: int) -> Response:
    response = Response(body, status=status, mimetype="text/html")
    response.headers.update(PAGE_HEADERS)
    return response


# ------------------------------------------------------------------------- routes


@blp.route("/<token>")
class RunnerPage(MethodView):
    @blp.doc(security=[])
    @blp.response(200, {"type": "string"}, content_type="text/html")
    @blp.alt_response(
        404, schema={"type": "string"}, content_type="text/html", description="No such page"
    )
    @errors(blp, 400)
    def get(self, token: str) -> Response:
        """The runner's plan page

        An HTML page for phones: status and alerts, a timeline of the phases, the next
        session with its intervals spelled out, what to do if it hurts, and buttons to
        subscribe to the calendar feed. The token is the feed token (rotating it moves
        the page too); `Cache-Control: no-store` and a strict Content-Security-Policy.
        """
        try:
            record, kind = planner().feed(token)
        except FeedNotFound:
            return not_found()
        if kind != "full":  # a busy-feed token is for work calendars, not for the plan
            return not_found()
        document = json.loads(planner().served(record)[0])
        context = page_context(document, subscribe_links(record), planner().clock())
        return _html(render_template("page.html", **TEMPLATE_HELPERS, **context), 200)


def not_found() -> Response:
    """A human 404 (this is a page people open, not an API), with the page's headers."""
    return _html(
        render_template("page.html", missing=True, disclaimer=DISCLAIMER, **TEMPLATE_HELPERS), 404
    )


@blp.route("/static/<filename>")
@blp.doc(security=[])
@blp.response(200, {"type": "string"}, content_type="text/css", description="CSS, JS or SVG")
@blp.alt_response(200, schema={"type": "string"}, content_type="text/javascript", success=True)
@blp.alt_response(200, schema={"type": "string"}, content_type="image/svg+xml", success=True)
@errors(blp, 404)
def asset(filename: str) -> Response:
    """A stylesheet, script or icon of the runner's page

    Served by the app itself (the page loads nothing from other hosts); addressed with
    a content hash in `?v=`, so it may be cached for a week.
    """
    response = send_from_directory(STATIC_DIR, filename, max_age=ASSET_MAX_AGE)
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response
