"""Calendar feeds: the capability tokens that serve a plan's calendars, what they show,
and the answer to a feed poll.

A feed URL is a capability: whoever has it sees the plan's calendar, so tokens carry 256
random bits, are looked up by their hash and compared in constant time, and can be
rotated or revoked. Token and setting changes are revisions, so they serialise with
check-ins and gates.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import Any

from planner.domain.model import Plan, Protocol
from planner.service.errors import FeedNotFound
from planner.service.rendering import (
    Feed,
    render_record,
    shows_cancelled,
    token_hash,
    with_feed_last_modified,
)
from planner.service.writes import Change, PlanWrites
from planner.store import FeedHead, PlanRecord


class FeedService(PlanWrites):
    """A plan's feeds: management under /v1 and the public polls."""

    # ---------------------------------------------------------------- management

    def rotate_feed(self, organisation: str, plan_id: str, key_id: int | None = None) -> PlanRecord:
        """New feed tokens: the old URLs answer 404 from now on."""

        def rotated(feed: Feed) -> Feed:
            busy = self.new_token() if feed.settings.get("busy") else None
            return replace(feed, token=self.new_token(), busy_token=busy)

        return self._feed_change(organisation, plan_id, key_id, "Feed token rotated.", rotated)

    def revoke_feed(self, organisation: str, plan_id: str, key_id: int | None = None) -> PlanRecord:
        """No URL serves the plan's calendars until a token is made again."""
        return self._feed_change(
            organisation,
            plan_id,
            key_id,
            "Feed revoked.",
            lambda feed: replace(feed, token=None, busy_token=None),
        )

    def configure_feed(
        self,
        organisation: str,
        plan_id: str,
        settings: Mapping[str, Any],
        key_id: int | None = None,
    ) -> PlanRecord:
        """Change what the calendars show; a busy feed gets its own token when enabled."""

        def configured(feed: Feed) -> Feed:
            busy = feed.busy_token or self.new_token() if settings.get("busy") else None
            return replace(feed, settings=dict(settings), busy_token=busy)

        return self._feed_change(
            organisation, plan_id, key_id, "Feed settings changed.", configured
        )

    def _feed_change(
        self,
        organisation: str,
        plan_id: str,
        key_id: int | None,
        reason: str,
        change: Callable[[Feed], Feed],
    ) -> PlanRecord:
        def decide(record: PlanRecord, plan: Plan, _: Protocol) -> Change:
            return Change(
                plan=plan,
                kind="feed",
                reason=reason,
                feed=change(Feed.of(record)),
                confirmed_at=None,
                key_id=key_id,
            )

        return self._revise(organisation, plan_id, decide).record

    # ---------------------------------------------------------------- polls

    def feed_head(self, token: str, *, body: bool = False) -> FeedHead:
        """Who and what a feed token names, and the feed's validators (and, with ``body``,
        its calendar) — without loading the plan. A feed whose cancelled sessions are due
        to drop out is re-rendered first, once, on the first poll after that."""
        head = self._head(token, body=body)
        if head is None:
            raise FeedNotFound("No such feed.")
        if self._due_for_rerender(head):
            self._drop_cancelled(head)
            return self.feed_head(token, body=body)
        return head

    def current_feed_head(self, token: str, *, body: bool = False) -> FeedHead | None:
        """The feed's head when it can be served as stored; ``None`` for an unknown token
        or a feed due for its re-render (then :meth:`feed_head` does it)."""
        head = self._head(token, body=body)
        return None if head is None or self._due_for_rerender(head) else head

    def feed_body(self, head: FeedHead) -> bytes:
        """The calendar a head names, read when it was not asked for with the head."""
        body = head.body or self.store.get_feed_body(head.plan_id, head.kind)
        if body is None:  # revoked or deleted between the two reads
            raise FeedNotFound("No such feed.")
        return body

    def feed(self, token: str) -> tuple[PlanRecord, str]:
        """The record behind a feed token and which feed it is (``full``/``busy``), after
        any re-render that is due (see :meth:`feed_head`)."""
        head = self.feed_head(token)
        record = self.store.get_plan(head.organisation, head.plan_id)
        if record is None:
            raise FeedNotFound("No such feed.")
        return record, head.kind

    def _head(self, token: str, *, body: bool) -> FeedHead | None:
        """The one way a token is resolved: by its hash, then compared in constant time."""
        head = self.store.get_feed_head(token_hash(token), body=body)
        if head is None or head.token is None:
            return None
        if not secrets.compare_digest(head.token.encode(), token.encode()):
            return None
        return head

    def _due_for_rerender(self, head: FeedHead) -> bool:
        """Cancelled sessions drop out once their grace period is over."""
        return head.feed_expires_at is not None and self.clock() >= head.feed_expires_at

    def _drop_cancelled(self, head: FeedHead) -> None:
        """Render the calendars again without the cancelled sessions (no new revision:
        the plan is the same, only the feed's window ended)."""
        record = self.store.get_plan_with_state(head.organisation, head.plan_id)
        if record is None:
            return
        now = self.clock()
        plan = self.load(record)  # from the state just read: no second read
        feed = replace(Feed.of(record), cancelled_until=None)
        rendered = render_record(
            plan,
            record.organisation,
            feed=feed,
            snapshot=record.protocol_snapshot,
            last_modified=now,
            show_cancelled=shows_cancelled(plan, feed, now),
            confirmed_at=record.confirmed_at,
            request=record.request,  # unchanged: not dumped again
            exporters=self.exporters,
        )
        rendered = with_feed_last_modified(record, rendered, now)
        self.store.set_plan_fields(
            record.organisation,
            record.id,
            expected_revision=record.revision,
            ics=rendered.ics,
            etag=rendered.etag,
            busy_ics=rendered.busy_ics,
            busy_etag=rendered.busy_etag,
            last_modified=rendered.last_modified,
            feed_expires_at=None,
        )


__all__ = ["FeedService"]
