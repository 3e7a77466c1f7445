"""Idempotency keys: the first request with a key claims it, and its response is kept
for :data:`IDEMPOTENCY_TTL`, so a retried POST is answered, not run again.

The claim is an insert that only one request can win (the key's row is its primary key),
so this works the same across threads, processes and app instances.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterable, Mapping
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, update
from sqlalchemy.exc import IntegrityError

from planner.store.base import StoreBase, _rows_changed, _unwrapped_value_errors
from planner.store.models import IdempotencyKeyRow
from planner.store.records import Claim, ClaimState, StoredResponse

#: How long an idempotency key and its response are kept.
IDEMPOTENCY_TTL = timedelta(hours=24)
#: A placeholder older than this belongs to a request that died; a new claim takes it over.
IDEMPOTENCY_STALE_AFTER = timedelta(minutes=5)
#: The response headers kept with an idempotency key (canonical spelling).
IDEMPOTENT_HEADERS: tuple[str, ...] = ("Location", "ETag", "Content-Type")
_MAX_IDEMPOTENCY_KEY_LENGTH = 255
_MAX_METHOD_LENGTH = 10
_MAX_PATH_LENGTH = 500


def _held_claim(claim: Claim, action: str) -> tuple[Any, ...]:
    """Where the row of a ``new`` claim is, while its request still holds it."""
    if claim.state is not ClaimState.NEW or claim.claimed_at is None:
        raise ValueError(f"only a 'new' claim can be {action}")
    return (
        *_idempotency_key_is((claim.organisation, claim.key, claim.method, claim.path)),
        IdempotencyKeyRow.created_at == claim.claimed_at,
        IdempotencyKeyRow.status.is_(None),
    )


def _checked_idempotency_values(key: str, method: str, path: str, fingerprint: str) -> None:
    if not key or len(key) > _MAX_IDEMPOTENCY_KEY_LENGTH:
        raise ValueError(f"an idempotency key has 1 to {_MAX_IDEMPOTENCY_KEY_LENGTH} characters")
    if not method or len(method) > _MAX_METHOD_LENGTH:
        raise ValueError(f"method must have 1 to {_MAX_METHOD_LENGTH} characters")
    if not path:
        raise ValueError("path must not be empty")
    if not fingerprint or len(fingerprint) > 64:
        raise ValueError("fingerprint must be a SHA-256 hex digest (64 characters)")


def _stored_path(path: str) -> str:
    """The path as the key's row holds it: a path too long for the column is kept as its
    SHA-256, so any URL a client can send works (and still names one path)."""
    if len(path) <= _MAX_PATH_LENGTH:
        return path
    return "sha256:" + hashlib.sha256(path.encode("utf-8", "surrogatepass")).hexdigest()


def _idempotency_key_is(ident: tuple[str, str, str, str]) -> tuple[Any, ...]:
    organisation, key, method, path = ident
    return (
        IdempotencyKeyRow.organisation == organisation,
        IdempotencyKeyRow.key == key,
        IdempotencyKeyRow.method == method,
        IdempotencyKeyRow.path == _stored_path(path),
    )


def _kept_headers(headers: Mapping[str, str] | Iterable[tuple[str, str]]) -> dict[str, str]:
    """The replayable subset of response headers, under their canonical names."""
    # A dict, Werkzeug ``Headers`` (a multi-dict that is not a Mapping) or (name, value) pairs.
    pairs = headers.items() if hasattr(headers, "items") else headers
    canonical = {name.lower(): name for name in IDEMPOTENT_HEADERS}
    kept: dict[str, str] = {}
    for name, value in pairs:
        wanted = canonical.get(name.lower())
        if wanted is not None and wanted not in kept:
            kept[wanted] = str(value)
    return kept


class IdempotencyStore(StoreBase):
    """The idempotency keys part of the :class:`~planner.store.Store`."""

    def claim_idempotency(
        self,
        organisation: str,
        key: str,
        method: str,
        path: str,
        fingerprint: str,
        *,
        wait: float = 0.0,
        poll_interval: float = 0.05,
        stale_after: timedelta = IDEMPOTENCY_STALE_AFTER,
    ) -> Claim:
        """Claim ``Idempotency-Key`` ``key`` for one request of ``organisation``.

        Atomically inserts a placeholder row; the answer's ``state`` says what to do:

        * ``new``: the caller runs the request and then calls :meth:`complete_idempotency`
          with the response (or :meth:`release_idempotency` if it failed and should not be
          replayed, e.g. a 5xx: the key can then be used again);
        * ``replay``: answer with ``claim.response`` (the same key, method, path and body
          fingerprint were seen in the last 24 hours);
        * ``mismatch``: the key was used with another body (``fingerprint``) → 422;
        * ``in_progress``: another request with the key is running → 409, after waiting up
          to ``wait`` seconds (polling every ``poll_interval``) for it to finish, which
          turns the answer into ``replay`` (or ``new``, if the other one released the key).

        A placeholder older than ``stale_after`` belongs to a request that died without
        releasing it and is taken over; a key older than 24 hours counts as unused. An empty
        or over-long key (over 255 characters), method or fingerprint is a ``ValueError``
        (the caller answers 400); any path works (a very long one is stored hashed).
        """
        _checked_idempotency_values(key, method, path, fingerprint)
        deadline = time.monotonic() + max(wait, 0.0)
        while True:
            claim = self._claim_idempotency_once(
                organisation, key, method, path, fingerprint, stale_after
            )
            remaining = deadline - time.monotonic()
            if claim.state is not ClaimState.IN_PROGRESS or remaining <= 0:
                return claim
            time.sleep(min(poll_interval, remaining))

    def _claim_idempotency_once(
        self,
        organisation: str,
        key: str,
        method: str,
        path: str,
        fingerprint: str,
        stale_after: timedelta,
    ) -> Claim:
        now = self._now()
        ident = (organisation, key, method, _stored_path(path))
        claim = Claim(ClaimState.IN_PROGRESS, organisation, key, method, path, fingerprint)
        for _ in range(5):  # the row can come and go between the steps; rarely loops
            try:
                with self._sessions.begin() as session:
                    session.add(
                        IdempotencyKeyRow(
                            organisation=organisation,
                            key=key,
                            method=method,
                            path=ident[3],
                            fingerprint=fingerprint,
                            created_at=now,
                            status=None,
                            headers=None,
                            body=None,
                        )
                    )
                return replace(claim, state=ClaimState.NEW, claimed_at=now)
            except IntegrityError:
                pass  # the key is taken: see by whom
            with self._sessions.begin() as session:
                row = session.get(IdempotencyKeyRow, ident)
                if row is None:
                    continue  # released or purged meanwhile: try to insert again
                expired = row.created_at <= now - IDEMPOTENCY_TTL
                stale = row.status is None and row.created_at <= now - stale_after
                if expired or stale:
                    taken = _rows_changed(
                        session,
                        update(IdempotencyKeyRow)
                        .where(
                            *_idempotency_key_is(ident),
                            IdempotencyKeyRow.created_at == row.created_at,
                        )
                        .values(
                            fingerprint=fingerprint,
                            created_at=now,
                            status=None,
                            headers=None,
                            body=None,
                        ),
                    )
                    if taken == 1:
                        return replace(claim, state=ClaimState.NEW, claimed_at=now)
                    continue
                if row.fingerprint != fingerprint:
                    return replace(claim, state=ClaimState.MISMATCH)
                if row.status is None:
                    return claim
                return replace(
                    claim,
                    state=ClaimState.REPLAY,
                    response=StoredResponse(
                        status=row.status,
                        headers=dict(row.headers or {}),
                        body=row.body or b"",
                        created_at=row.created_at,
                    ),
                )
        return claim

    def complete_idempotency(
        self,
        claim: Claim,
        *,
        status: int,
        headers: Mapping[str, str] | Iterable[tuple[str, str]],
        body: bytes,
    ) -> bool:
        """Store the response of the request that holds ``claim`` (a ``new`` claim).

        Only ``Location``, ``ETag`` and ``Content-Type`` are kept from ``headers`` (a dict,
        Werkzeug ``Headers`` or pairs; names in any case). ``False``: the claim was no longer
        held (taken over as stale, or purged) and nothing was stored.
        """
        held = _held_claim(claim, "completed")
        with self._sessions.begin() as session:
            changed = _rows_changed(
                session,
                update(IdempotencyKeyRow)
                .where(*held)
                .values(status=status, headers=_kept_headers(headers), body=bytes(body)),
            )
            return changed == 1

    def release_idempotency(self, claim: Claim) -> bool:
        """Give up a ``new`` claim without a response: the key can be used again."""
        held = _held_claim(claim, "released")
        with self._sessions.begin() as session:
            return _rows_changed(session, delete(IdempotencyKeyRow).where(*held)) == 1

    def purge_idempotency(self, older_than: datetime) -> int:
        """Delete idempotency keys created before ``older_than``; return how many."""
        with _unwrapped_value_errors(), self._sessions.begin() as session:
            return _rows_changed(
                session, delete(IdempotencyKeyRow).where(IdempotencyKeyRow.created_at < older_than)
            )
