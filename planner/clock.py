"""The one source of the current time in the product: aware UTC, injectable everywhere.

The services, the store and the webhook worker each take a clock (a callable) so that
tests walk through a plan's dates without sleeping; these are the defaults they take.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

#: What every component accepts as its clock.
Clock = Callable[[], datetime]


def now() -> datetime:
    """The current instant, aware, in UTC."""
    return datetime.now(UTC)


def now_whole_seconds() -> datetime:
    """The current instant to the second: what a plan revision is stamped with, since the
    calendar's DTSTAMP and HTTP dates have no finer resolution."""
    return now().replace(microsecond=0)
