"""``Idempotency-Key`` claims: clinic systems retry every POST on any network error, and a
retry must get the first answer, not a second plan.

The first response to a key is kept for 24 h (``IDEMPOTENCY_TTL``) and replayed; a
duplicate that arrives while the first is still running waits for it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from planner.service.base import ServiceBase
from planner.store import Claim


class IdempotencyService(ServiceBase):
    def claim_idempotency(
        self, organisation: str, key: str, path: str, fingerprint: str, *, wait: float
    ) -> Claim:
        """Claim ``key`` for a POST to ``path`` with a body of ``fingerprint``; the claim's
        state says whether to go on, replay, refuse a reused key, or report it busy."""
        return self.store.claim_idempotency(organisation, key, "POST", path, fingerprint, wait=wait)

    def complete_idempotency(
        self,
        claim: Claim,
        *,
        status: int,
        headers: Mapping[str, str] | Iterable[tuple[str, str]],
        body: bytes,
    ) -> None:
        """Keep the answer a claim's request gave, for its replays."""
        self.store.complete_idempotency(claim, status=status, headers=headers, body=body)

    def release_idempotency(self, claim: Claim) -> None:
        """Free the key of a request that failed or died: its retry runs afresh."""
        self.store.release_idempotency(claim)


__all__ = ["IdempotencyService"]
