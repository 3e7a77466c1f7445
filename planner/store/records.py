"""Plain values returned by the store: frozen dataclasses, never ORM objects.

Handing out plain values means no caller can trigger lazy loads on a closed session or hold a
connection by accident, and the API layer can be tested with hand-made records.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime
from typing import Any


@dataclass(frozen=True, slots=True)
class ApiKey:
    """An API key as the service sees it; the secret itself is never stored or returned."""

    id: int
    name: str
    organisation: str
    prefix: str
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None

    @property
    def active(self) -> bool:
        """Whether the key may still authenticate."""
        return self.revoked_at is None


@dataclass(frozen=True, slots=True)
class PlanRecord:
    """One stored plan: identity, ownership, bookkeeping and the rendered documents.

    ``request`` is the normalised input document (JSON-compatible), ``document`` the rendered
    plan JSON bytes and ``ics`` the rendered iCalendar bytes; ``etag`` belongs to ``ics``
    (see :func:`strong_etag`). All datetimes are aware UTC.
    """

    id: str
    organisation: str
    revision: int
    status: str
    created_at: datetime
    updated_at: datetime
    athlete_reference: str | None
    protocol_id: str
    protocol_version: str
    request: dict[str, Any]
    document: bytes
    ics: bytes
    etag: str


def strong_etag(data: bytes) -> str:
    """Return a strong HTTP entity tag for ``data``.

    Derived from the bytes rather than from a revision number, so identical renderings share
    a tag and any change in the rendered output (even from a renderer fix) changes it.

    >>> strong_etag(b"")
    '"e3b0c44298fc1c149afbf4c8996fb924"'
    """
    return '"' + hashlib.sha256(data).hexdigest()[:32] + '"'
