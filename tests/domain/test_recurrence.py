"""Run-day recurrence is RFC 5545 ``FREQ=WEEKLY;BYDAY=…``: held to dateutil's rrule."""

from __future__ import annotations

from datetime import date, timedelta
from itertools import islice

from dateutil.rrule import MO, WEEKLY, rrule
from hypothesis import given
from hypothesis import strategies as st

from planner.domain.scheduling import days_on_weekdays

WEEKDAYS = st.frozensets(st.integers(min_value=0, max_value=6), min_size=1)
STARTS = st.dates(min_value=date(2020, 1, 1), max_value=date(2035, 12, 31))


@given(WEEKDAYS, STARTS, st.integers(min_value=0, max_value=120))
def test_a_bounded_range_gives_the_days_rrule_gives(
    weekdays: frozenset[int], start: date, length: int
) -> None:
    end = start + timedelta(days=length)
    expected = rrule(WEEKLY, dtstart=start, until=end, byweekday=sorted(weekdays), wkst=MO)
    assert list(days_on_weekdays(weekdays, start, end)) == [d.date() for d in expected]


@given(WEEKDAYS, STARTS, st.integers(min_value=1, max_value=60))
def test_an_open_range_goes_on_as_rrule_does(
    weekdays: frozenset[int], start: date, count: int
) -> None:
    expected = rrule(WEEKLY, dtstart=start, count=count, byweekday=sorted(weekdays), wkst=MO)
    assert list(islice(days_on_weekdays(weekdays, start), count)) == [d.date() for d in expected]


def test_no_weekdays_give_no_days_where_rrule_would_use_the_start_weekday() -> None:
    assert list(days_on_weekdays(frozenset(), date(2027, 1, 1))) == []
