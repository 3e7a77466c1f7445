"""The one settable clock the tests give the service and the store: time-dependent rules
are walked through day by day without sleeping or reading the real time."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo


class Clock:
    """Returns ``now`` when called; tests move it."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, delta: timedelta) -> None:
        self.now += delta

    def on(self, day: date | str, hour: int = 20) -> None:
        """``hour`` o'clock UTC on ``day``."""
        day = date.fromisoformat(day) if isinstance(day, str) else day
        self.now = datetime.combine(day, time(hour), UTC)

    def local(self, day: str, hour: int = 12, tz: str = "America/New_York") -> None:
        """``hour`` o'clock on ``day`` in the zone ``tz``."""
        local = datetime.combine(date.fromisoformat(day), time(hour), ZoneInfo(tz))
        self.now = local.astimezone(UTC)
