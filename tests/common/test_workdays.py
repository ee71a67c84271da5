"""Working days on the State Council's official calendar: known answers from the
published notices (2025: 国办发明电〔2024〕12号; 2026: 国办发明电〔2025〕7号)."""

from datetime import date
from pathlib import Path

import pytest
import yaml

from common.errors import ConfigError
from common.settings import DEFAULT_CONFIG, Calendar, CalendarNotice, load_settings
from common.workdays import UnknownCalendarYear, WorkCalendar, china_date

CAL = WorkCalendar()


@pytest.mark.parametrize(
    ("filed", "due"),
    [
        # A plain Friday: the weekend does not count.
        (date(2025, 6, 6), date(2025, 6, 10)),
        # Eve of the 2025 Spring Festival holiday (Jan 28 – Feb 4): Feb 5 and Feb 6.
        (date(2025, 1, 27), date(2025, 2, 6)),
        # Eve of the 2025 National Day holiday (Oct 1 – Oct 8): Oct 9 and Oct 10.
        (date(2025, 9, 30), date(2025, 10, 10)),
        # Friday before the 2026 Spring Festival holiday (Feb 15 – Feb 23): Saturday
        # Feb 14 is a make-up working day, then Feb 24.
        (date(2026, 2, 13), date(2026, 2, 24)),
        # Filed on that 调休 Saturday itself: Feb 24 and Feb 25.
        (date(2026, 2, 14), date(2026, 2, 25)),
        # Eve of the 2026 National Day holiday (Oct 1 – Oct 7): Oct 8 and Oct 9.
        (date(2026, 9, 30), date(2026, 10, 9)),
        # Oct 9 2026 is a Friday and Saturday Oct 10 a make-up working day: Oct 10, Oct 12.
        (date(2026, 10, 9), date(2026, 10, 12)),
        # Filed on a Sunday: counts from Monday (the filing day never counts).
        (date(2025, 6, 8), date(2025, 6, 10)),
    ],
)
def test_two_working_days_known_answers(filed: date, due: date) -> None:
    assert CAL.add_working_days(filed, 2) == due


def test_a_make_up_saturday_is_a_working_day_and_a_holiday_weekday_is_not() -> None:
    assert CAL.is_working_day(date(2026, 2, 14))  # Saturday, 调休
    assert CAL.is_working_day(date(2025, 2, 8))  # Saturday, 调休
    assert not CAL.is_working_day(date(2025, 10, 8))  # Wednesday, National Day
    assert not CAL.is_working_day(date(2026, 2, 16))  # Monday, Spring Festival eve
    assert not CAL.is_working_day(date(2025, 6, 7))  # an ordinary Saturday


def test_an_unknown_year_is_refused_not_guessed() -> None:
    assert not CAL.knows(2031)
    with pytest.raises(UnknownCalendarYear) as e:
        CAL.add_working_days(date(2031, 3, 5), 2)
    assert e.value.code == "calendar_year_unknown"
    assert "calendar.notices.2031" in e.value.message
    # The last days of a known year reaching into an unknown one are refused too.
    with pytest.raises(UnknownCalendarYear):
        WorkCalendar().add_working_days(date(2026, 12, 31), 2)


def test_a_configured_notice_makes_a_new_year_known() -> None:
    config = Calendar(
        notices={
            2031: CalendarNotice(
                holidays=(date(2031, 3, 6),),  # a Thursday, declared a holiday
                workdays=(date(2031, 3, 8),),  # a Saturday, declared a working day
            )
        }
    )
    cal = WorkCalendar.from_config(config)
    assert cal.knows(2031)
    # Wed Mar 5 → (Thu 6 holiday) Fri 7, Sat 8 (working day).
    assert cal.add_working_days(date(2031, 3, 5), 2) == date(2031, 3, 8)
    # An ordinary weekend of a configured year is still a rest day.
    assert cal.add_working_days(date(2031, 3, 13), 2) == date(2031, 3, 17)


def test_a_configured_notice_corrects_a_known_year() -> None:
    # Suppose a late notice made Monday 2025-06-09 a holiday.
    cal = WorkCalendar.from_config(
        Calendar(notices={2025: CalendarNotice(holidays=(date(2025, 6, 9),))})
    )
    assert cal.add_working_days(date(2025, 6, 6), 2) == date(2025, 6, 11)
    # The rest of 2025 still comes from the package.
    assert cal.add_working_days(date(2025, 9, 30), 2) == date(2025, 10, 10)


def test_china_date_is_utc_plus_8() -> None:
    # 2025-09-30 16:30 UTC is already Oct 1 in Beijing.
    assert china_date(1759249800) == date(2025, 10, 1)
    assert china_date(1759249800 - 3 * 3600) == date(2025, 9, 30)


def _config_with(tmp_path: Path, calendar: object) -> Path:
    raw = yaml.safe_load(DEFAULT_CONFIG.read_text(encoding="utf-8"))
    raw["calendar"] = calendar
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")
    return path


def test_config_notices_load_from_yaml(tmp_path: Path) -> None:
    path = _config_with(
        tmp_path, {"notices": {2031: {"holidays": ["2031-01-01"], "workdays": ["2031-01-04"]}}}
    )
    s = load_settings(path, env={"XINYI_HOME": str(tmp_path)})
    cal = WorkCalendar.from_config(s.config.calendar)
    assert cal.is_working_day(date(2031, 1, 4))
    assert not cal.is_working_day(date(2031, 1, 1))


@pytest.mark.parametrize(
    "notices",
    [
        {2031: {"holidays": ["2031-01-02"], "workdays": ["2031-01-02"]}},
        {2031: {"holidays": ["2032-01-01"]}},
    ],
)
def test_inconsistent_notices_are_refused_at_start(tmp_path: Path, notices: object) -> None:
    path = _config_with(tmp_path, {"notices": notices})
    with pytest.raises(ConfigError) as e:
        load_settings(path, env={"XINYI_HOME": str(tmp_path)})
    assert "calendar" in e.value.message
