"""API keys: creating, authenticating, listing and revoking them.

Only a key's hash is stored; the secret is shown once, when the key is made. Every API
request authenticates, so the lookup by hash is a prepared read (see
:mod:`planner.store.prepared`).
"""

from __future__ import annotations

import hashlib
import secrets
import string
from collections.abc import Iterable
from dataclasses import replace
from datetime import timedelta

from sqlalchemy import bindparam, or_, select, update

from planner.store.base import StoreBase, _by_name, _checked_text, _field_names, _rows_changed
from planner.store.errors import AmbiguousKeyError
from planner.store.models import ApiKeyRow
from planner.store.prepared import PreparedRead
from planner.store.records import SCOPES, ApiKey

#: Every secret starts with this, so a leaked key is recognisable (e.g. by secret scanners).
KEY_SCHEME = "sbk_"
#: Length of the display prefix that follows the scheme.
KEY_PREFIX_LENGTH = 8
#: Bytes of randomness in the secret's body (256 bits; the design asks for at least 160).
KEY_BODY_BYTES = 32
#: ``last_used_at`` is only rewritten when older than this, so authenticating a busy key
#: is a read, not a write (SQLite allows one writer at a time).
LAST_USED_RESOLUTION = timedelta(minutes=1)

# Letters and digits only: no "_" or "-" inside the prefix, so "sbk_<prefix>_…" splits cleanly.
_PREFIX_ALPHABET = string.ascii_letters + string.digits
# Longer inputs are not keys; refuse them before hashing attacker-sized strings.
_MAX_SECRET_LENGTH = 256


def hash_secret(secret: str) -> str:
    """Return the stored form of an API key secret (SHA-256, hex).

    A fast hash is enough here: the secret carries 256 random bits, so there is nothing to
    brute-force, unlike a password that needs a slow, salted hash.
    """
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def _new_secret() -> tuple[str, str]:
    """Return ``(prefix, secret)`` for a new key."""
    prefix = "".join(secrets.choice(_PREFIX_ALPHABET) for _ in range(KEY_PREFIX_LENGTH))
    return prefix, f"{KEY_SCHEME}{prefix}_{secrets.token_urlsafe(KEY_BODY_BYTES)}"


def _checked_scopes(scopes: Iterable[str] | None) -> list[str]:
    """``None`` → every scope; otherwise known scopes only, at least one, in canonical order."""
    if scopes is None:
        return list(SCOPES)
    if isinstance(scopes, str):
        raise TypeError("scopes must be a list of scope names, not a string")
    chosen = set(scopes)
    unknown = sorted(chosen - set(SCOPES))
    if unknown:
        raise ValueError(f"unknown scopes: {', '.join(unknown)} (known: {', '.join(SCOPES)})")
    if not chosen:
        raise ValueError("a key needs at least one scope")
    return [scope for scope in SCOPES if scope in chosen]


_API_KEY_FIELDS = _field_names(ApiKey)


def _api_key(row: ApiKeyRow) -> ApiKey:
    return _by_name(row, ApiKey, _API_KEY_FIELDS, scopes=tuple(row.scopes))


class KeyStore(StoreBase):
    """The API keys part of the :class:`~planner.store.Store`."""

    _key_by_hash: PreparedRead

    def _prepare_reads(self) -> None:
        super()._prepare_reads()
        self._key_by_hash = PreparedRead(
            self._engine,
            select(*(getattr(ApiKeyRow, name) for name in _API_KEY_FIELDS)).where(
                ApiKeyRow.key_hash == bindparam("key_hash")
            ),
        )

    def create_key(
        self, name: str, organisation: str, scopes: Iterable[str] | None = None
    ) -> tuple[ApiKey, str]:
        """Create an API key for ``organisation``; return the record and the secret.

        ``scopes`` limits what the key may do (names from :data:`SCOPES`); ``None`` gives
        it every scope. Unknown names, or none at all, are a ``ValueError``. The secret is
        shown once to the caller and never stored: only its hash is kept.
        """
        prefix, secret = _new_secret()
        row = ApiKeyRow(
            name=_checked_text(name, "name"),
            organisation=_checked_text(organisation, "organisation"),
            prefix=prefix,
            key_hash=hash_secret(secret),
            created_at=self._now(),
            scopes=_checked_scopes(scopes),
        )
        with self._sessions.begin() as session:
            session.add(row)
            session.flush()  # assigns the id
            key = _api_key(row)
        return key, secret

    def authenticate(self, secret: str) -> ApiKey | None:
        """Return the active key whose secret this is, or ``None`` (unknown or revoked).

        Every API request starts here, so the lookup is a prepared read; the write that
        records ``last_used_at`` happens at most once per :data:`LAST_USED_RESOLUTION`.
        """
        if not secret.startswith(KEY_SCHEME) or len(secret) > _MAX_SECRET_LENGTH:
            return None
        digest = hash_secret(secret)
        values = self._key_by_hash.one(key_hash=digest)
        if values is None or values["revoked_at"] is not None:
            return None
        key = ApiKey(**{**values, "scopes": tuple(values["scopes"])})
        now = self._now()
        if key.last_used_at is None or now - key.last_used_at >= LAST_USED_RESOLUTION:
            with self._sessions.begin() as session:
                session.execute(
                    update(ApiKeyRow)
                    .where(ApiKeyRow.id == key.id, ApiKeyRow.revoked_at.is_(None))
                    .values(last_used_at=now)
                )
            key = replace(key, last_used_at=now)
        return key

    def list_keys(self) -> list[ApiKey]:
        """Return every key, revoked ones included, oldest first."""
        with self._sessions.begin() as session:
            rows = session.scalars(select(ApiKeyRow).order_by(ApiKeyRow.id))
            return [_api_key(row) for row in rows]

    def key_names(self, key_ids: Iterable[int | None]) -> dict[int, str]:
        """The names of the keys with these ids (revoked ones too), to say who wrote what."""
        wanted = {key_id for key_id in key_ids if key_id is not None}
        if not wanted:
            return {}
        with self._sessions.begin() as session:
            rows = session.execute(
                select(ApiKeyRow.id, ApiKeyRow.name).where(ApiKeyRow.id.in_(wanted))
            )
            return {key_id: name for key_id, name in rows}

    def revoke_key(self, key_id_or_prefix: str) -> bool:
        """Revoke an active key named by id, display prefix (with or without ``sbk_``) or secret.

        Returns ``False`` when no active key matches (unknown, or already revoked). Raises
        :class:`AmbiguousKeyError` when a prefix matches several active keys.
        """
        reference = key_id_or_prefix.strip()
        matches = [ApiKeyRow.prefix == reference.removeprefix(KEY_SCHEME)]
        if reference.startswith(KEY_SCHEME):
            matches.append(ApiKeyRow.key_hash == hash_secret(reference))
        if reference.isdigit() and len(reference) <= 18:  # stays within a 64-bit integer
            matches.append(ApiKeyRow.id == int(reference))
        with self._sessions.begin() as session:
            ids = list(
                session.scalars(
                    select(ApiKeyRow.id).where(ApiKeyRow.revoked_at.is_(None), or_(*matches))
                )
            )
            if len(ids) > 1:
                raise AmbiguousKeyError(reference, ids)
            if not ids:
                return False
            # The revoked_at condition again: a concurrent revoke must not be reported twice.
            changed = _rows_changed(
                session,
                update(ApiKeyRow)
                .where(ApiKeyRow.id == ids[0], ApiKeyRow.revoked_at.is_(None))
                .values(revoked_at=self._now()),
            )
            return changed == 1
