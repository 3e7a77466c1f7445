"""Exceptions raised by the store for conditions a caller can act on."""

from __future__ import annotations


class StoreError(Exception):
    """Base class for store errors."""


class DuplicatePlanError(StoreError):
    """A plan with this id is already stored (nothing was written)."""

    def __init__(self, plan_id: str) -> None:
        super().__init__(f"plan {plan_id!r} already exists")
        self.plan_id = plan_id


class AmbiguousKeyError(StoreError, LookupError):
    """More than one active API key matches; the caller should name the key by its id."""

    def __init__(self, reference: str, ids: list[int]) -> None:
        super().__init__(
            f"{reference!r} matches several active keys (ids {', '.join(map(str, ids))}); "
            "revoke by id instead"
        )
        self.reference = reference
        self.ids = ids


class PlanMissing(StoreError, LookupError):
    """The plan to update does not exist in this organisation (nothing was written)."""

    def __init__(self, plan_id: str) -> None:
        super().__init__(f"plan {plan_id!r} does not exist")
        self.plan_id = plan_id


class StaleRevision(StoreError):
    """The plan is no longer at the revision the caller read (nothing was written).

    ``current`` is the revision it is at now: re-read, re-apply and retry, or report a
    conflict to a client that named the revision it had seen.
    """

    def __init__(self, plan_id: str, expected: int, current: int) -> None:
        super().__init__(f"plan {plan_id!r} is at revision {current}, not {expected}")
        self.plan_id = plan_id
        self.expected = expected
        self.current = current
