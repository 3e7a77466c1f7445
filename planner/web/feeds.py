"""Calendar feeds: the public, token-guarded feed URL and its management under /v1.

A feed URL is a capability: whoever has it sees the plan's calendar, so tokens carry
256 random bits, are compared in constant time, can be rotated or revoked, and are
kept out of logs (see ``planner.web.server``).
"""

from __future__ import annotations

import base64
import hashlib
from html import escape
from typing import Any
from urllib.parse import quote

from flask import Response, current_app, jsonify, request
from flask.views import MethodView
from flask_smorest import Blueprint

from planner import links
from planner.schemas.api import FeedLinksSchema, FeedSettingsSchema
from planner.service import FeedNotFound, PlanRecord
from planner.service.rendering import plan_links
from planner.web.api import errors, idempotent
from planner.web.auth import FEED_ADMIN_SCOPES, current_organisation, protect
from planner.web.common import ICAL_MIME, bytes_response, current_key_id, planner
from planner.web.conditional import feed_answer

blp = Blueprint(
    "feeds",
    __name__,
    description="Calendar feeds runners subscribe to: no API key, the URL is the secret.",
)
admin = protect(
    Blueprint(
        "feed_admin",
        __name__,
        url_prefix=links.PLANS,
        description="Rotate, revoke and configure a plan's calendar feeds.",
    ),
    FEED_ADMIN_SCOPES,
)


class NotModified(Response):
    """A 304 that keeps ``Last-Modified``: Werkzeug drops it as an entity header, but a
    calendar client revalidating by date needs the same validators as the 200."""

    def get_wsgi_headers(self, environ):  # type: ignore[no-untyped-def]
        headers = super().get_wsgi_headers(environ)
        if "Last-Modified" in self.headers and "Last-Modified" not in headers:
            headers["Last-Modified"] = self.headers["Last-Modified"]
        return headers


def absolute(path: str) -> str:
    base = current_app.config.get("PUBLIC_BASE_URL") or request.host_url
    return base.rstrip("/") + path


def subscribe_links(record: PlanRecord) -> dict[str, Any]:
    """Every way to subscribe: https, webcal:// (Apple, Outlook) and Google's add-by-URL."""
    links = plan_links(record)
    feed = absolute(links["feed"]) if links["feed"] else None
    webcal = "webcal://" + feed.split("://", 1)[1] if feed else None
    return {
        "feed": feed,
        "webcal": webcal,
        "google": (
            "https://calendar.google.com/calendar/render?cid=" + quote(webcal, safe="")
            if webcal
            else None
        ),
        "busy_feed": absolute(links["busy_feed"]) if links["busy_feed"] else None,
        "page": absolute(links["page"]) if links["page"] else None,
        "settings": FeedSettingsSchema().dump(record.settings or {}),
    }


def _wants_html() -> bool:
    """A browser opening the feed link gets a help page instead of a download."""
    best = request.accept_mimetypes.best_match([ICAL_MIME, "text/html"])
    return best == "text/html" and request.accept_mimetypes[ICAL_MIME] < 1


@blp.route(f"{links.FEEDS}/<token>{links.CALENDAR_SUFFIX}")
class Feed(MethodView):
    @blp.doc(security=[])
    @blp.response(200, {"type": "string"}, content_type=ICAL_MIME)
    @blp.alt_response(200, content_type="text/html", description="Help page for browsers")
    @blp.alt_response(304, description="Not modified: same ETag / not modified since")
    @errors(blp, 400, 404)
    def get(self, token: str) -> Response:
        """Subscribe to a plan's calendar

        Strong `ETag` over the exact bytes and a `Last-Modified` that never moves
        backwards; `If-None-Match` takes precedence over `If-Modified-Since`. A browser
        (Accept: text/html) gets a short help page; `?download=1` adds
        `Content-Disposition: attachment` for a one-off import.
        """
        download = request.args.get("download") == "1"
        if _wants_html() and not download:
            return help_page(planner().feed(token)[0])
        answer = feed_answer(
            planner(),
            token,
            if_none_match=request.headers.get("If-None-Match"),
            if_modified_since=request.headers.get("If-Modified-Since"),
            rerender=True,
        )
        if answer is None:  # a revoked busy feed
            raise FeedNotFound("No such feed.")
        if answer.status == 304:
            return NotModified(status=304, headers=answer.headers)
        response = bytes_response(answer.body, ICAL_MIME)
        response.headers.extend(answer.headers)
        if download:
            response.headers["Content-Disposition"] = 'attachment; filename="return-to-running.ics"'
        return response


_HELP_STYLE = """
body{font:16px/1.5 system-ui,sans-serif;max-width:36rem;margin:2rem auto;padding:0 1rem}
body{color:#1a1a1a} a{color:#0b57d0}
code{word-break:break-all;background:#f3f3f3;padding:.1rem .3rem}
"""
#: The help page runs no script and loads nothing; its one inline style is allowed by hash.
_HELP_HEADERS = {
    "Content-Security-Policy": "; ".join(
        (
            "default-src 'none'",
            "style-src 'sha256-"
            + base64.b64encode(hashlib.sha256(_HELP_STYLE.encode()).digest()).decode()
            + "'",
            "base-uri 'none'",
            "form-action 'none'",
            "frame-ancestors 'none'",
        )
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Robots-Tag": "noindex, nofollow",
    "Cache-Control": "no-store",
}


def help_page(record: PlanRecord) -> Response:
    links = subscribe_links(record)
    html = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer"><meta name="robots" content="noindex">
<title>Calendar feed — Return to running</title>
<style>{_HELP_STYLE}</style>
</head><body><main>
<h1>This is a calendar feed</h1>
<p>Add it to your calendar app once; it updates itself when your plan changes.</p>
<ul>
<li><a href="{escape(links["webcal"])}">Subscribe in Apple Calendar or Outlook</a></li>
<li><a href="{escape(links["google"])}">Add to Google Calendar</a></li>
<li><a href="{escape(links["page"])}">See your plan</a></li>
</ul>
<p>Or copy this address into your calendar's "subscribe by URL":<br>
<code>{escape(links["feed"])}</code></p>
<p>Keep this address private: anyone who has it can see your training calendar.</p>
</main></body></html>"""
    response = Response(html, mimetype="text/html")
    response.headers.update(_HELP_HEADERS)
    return response


@admin.route("/<plan_id>/feed")
class FeedSettings(MethodView):
    @admin.response(200, FeedLinksSchema)
    @errors(admin, 401, 404)
    def get(self, plan_id: str) -> Response:
        """Show the plan's feed links and settings"""
        return jsonify(subscribe_links(planner().get_plan(current_organisation(), plan_id)))

    @admin.arguments(FeedSettingsSchema())
    @admin.response(200, FeedLinksSchema)
    @errors(admin, 400, 401, 404, 409, 413, 415, 422)
    def put(self, settings: dict[str, Any], plan_id: str) -> Response:
        """Change what the calendars show

        `detail`: `activity` (default: never names the diagnosis) or `full`;
        `reminder_minutes`: a reminder before each timed session; `busy`: also publish a
        "busy" feed for work calendars (titles "Training", no details).
        """
        record = planner().configure_feed(
            current_organisation(), plan_id, settings, current_key_id()
        )
        return jsonify(subscribe_links(record))


@admin.route("/<plan_id>/feed-token")
class FeedToken(MethodView):
    @admin.response(201, FeedLinksSchema)
    @idempotent(admin)
    @errors(admin, 401, 404, 415, 422)
    def post(self, plan_id: str) -> Response:
        """Rotate the feed token: the old feed URL answers 404 at once"""
        record = planner().rotate_feed(current_organisation(), plan_id, current_key_id())
        response = jsonify(subscribe_links(record))
        response.status_code = 201
        return response

    @admin.response(204)
    @errors(admin, 401, 404)
    def delete(self, plan_id: str) -> Response:
        """Revoke the feed: no URL serves this plan's calendar until a new token"""
        planner().revoke_feed(current_organisation(), plan_id, current_key_id())
        return Response(status=204)
