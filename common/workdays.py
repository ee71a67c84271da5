"""Working days on the official calendar of the State Council (国务院办公厅 notices on
public holidays): weekends are rest days, public holidays are rest days even on a
weekday, and the make-up working days 调休 are working days even on a Saturday or
Sunday. Deadlines such as "objections forwarded within 2 working days" (JS 14, AH 10)
are counted on it.

Sources, in order: the configured notices (``calendar.notices`` in ``config.yaml``:
a year the installed ``chinese-calendar`` package does not know yet, or a correction
to one it does), then the package. A year neither knows is refused with
:class:`UnknownCalendarYear` (code ``calendar_year_unknown``): a deadline is never
guessed from weekends alone.

Counting rule (docs/objections.md): the day something is filed never counts, whatever
the hour; ``add_working_days(d, n)`` is the n-th working day strictly after ``d``. A
filing on a rest day therefore counts from the next working day, the same as a filing
after office hours. Dates are calendar dates in China Standard Time (UTC+8):
:func:`china_date` turns a UNIX time into one.

Pure: no I/O, no clock (callers pass dates), no database.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, timezone

import chinese_calendar

from common.errors import Unavailable
from common.settings import Calendar

CHINA_STANDARD_TIME = timezone(timedelta(hours=8), "CST")

# Longest run of consecutive rest days the official calendar has had (Spring Festival
# plus a weekend: 9 days in 2026); counting further than this many days past the last
# working day found means the calendar is broken, not that a deadline is far away.
_MAX_REST_RUN = 31


class UnknownCalendarYear(Unavailable):
    """The official calendar of a year is neither in the package nor in the config."""

    code = "calendar_year_unknown"


@dataclass(frozen=True)
class Notice:
    """One year's official notice as configured: its holidays (rest days, weekday or
    not) and its make-up working days (working days, weekend or not)."""

    holidays: frozenset[date] = frozenset()
    workdays: frozenset[date] = frozenset()


class WorkCalendar:
    """The official calendar: the configured notices over the installed package."""

    def __init__(self, notices: Mapping[int, Notice] | None = None) -> None:
        self.notices = dict(notices or {})
        for year, notice in self.notices.items():
            both = notice.holidays & notice.workdays
            if both:
                raise ValueError(
                    f"calendar.notices.{year}: {min(both).isoformat()} is both a holiday "
                    "and a working day"
                )
            for day in notice.holidays | notice.workdays:
                if day.year != year:
                    raise ValueError(f"calendar.notices.{year}: {day.isoformat()} is not in {year}")

    @classmethod
    def from_config(cls, config: Calendar) -> WorkCalendar:
        """The calendar with the notices of ``config.yaml`` (``calendar.notices``)."""
        return cls(
            {
                year: Notice(frozenset(n.holidays), frozenset(n.workdays))
                for year, n in config.notices.items()
            }
        )

    def knows(self, year: int) -> bool:
        """Whether the calendar of ``year`` is known (configured or in the package)."""
        if year in self.notices:
            return True
        try:
            chinese_calendar.is_workday(date(year, 1, 1))
        except NotImplementedError:
            return False
        return True

    def is_working_day(self, day: date) -> bool:
        """Whether ``day`` is a working day; raises :class:`UnknownCalendarYear`."""
        notice = self.notices.get(day.year)
        if notice is not None:
            if day in notice.workdays:
                return True
            if day in notice.holidays:
                return False
            if not self._package_knows(day):
                # A configured year the package does not know: the notice is complete.
                return day.weekday() < 5
        try:
            return bool(chinese_calendar.is_workday(day))
        except NotImplementedError:
            raise UnknownCalendarYear(
                f"the official calendar of {day.year} is not known; add its State Council "
                f"notice under calendar.notices.{day.year} in config.yaml",
                year=day.year,
            ) from None

    def add_working_days(self, start: date, n: int) -> date:
        """The ``n``-th working day strictly after ``start`` (``n`` ≥ 1)."""
        if n < 1:
            raise ValueError("n must be at least 1")
        day, found, rest = start, 0, 0
        while found < n:
            day += timedelta(days=1)
            if self.is_working_day(day):
                found, rest = found + 1, 0
            else:
                rest += 1
                if rest > _MAX_REST_RUN:
                    raise UnknownCalendarYear(
                        f"no working day in the {_MAX_REST_RUN} days after "
                        f"{(day - timedelta(days=rest)).isoformat()}: check calendar.notices",
                        year=day.year,
                    )
        return day

    @staticmethod
    def _package_knows(day: date) -> bool:
        try:
            chinese_calendar.is_workday(day)
        except NotImplementedError:
            return False
        return True


def china_date(unix_seconds: float) -> date:
    """The calendar date in China Standard Time of a UNIX time."""
    return datetime.fromtimestamp(unix_seconds, UTC).astimezone(CHINA_STANDARD_TIME).date()
