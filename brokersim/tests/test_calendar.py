import datetime as dt

import pytest

from brokersim import calendar as cal
from brokersim import instruments as ins

D = dt.date.fromisoformat


@pytest.mark.parametrize(
    ("today", "name", "expected"),
    [
        # Tuesday 24 Nov 2026 is Guru Nanak Jayanti: NIFTY's weekly moves back to Monday the 23rd.
        ("2026-11-20", "NIFTY", ["2026-11-23", "2026-12-01", "2026-12-08", "2026-12-15", "2026-12-29", "2027-01-26"]),
        # BANKNIFTY is monthly only; November's last Tuesday is the holiday, so Monday 23rd.
        ("2026-11-20", "BANKNIFTY", ["2026-11-23", "2026-12-29", "2027-01-26"]),
        # SENSEX weeklies are Thursdays.
        ("2026-11-20", "SENSEX", ["2026-11-26", "2026-12-03", "2026-12-10", "2026-12-17", "2026-12-31", "2027-01-28"]),
        # Diwali 21 Oct 2025 (Tuesday): weekly on Monday 20th, still listed on that day.
        ("2025-10-20", "NIFTY", ["2025-10-20", "2025-10-28", "2025-11-04", "2025-11-11", "2025-11-25", "2025-12-30"]),
    ],
)
def test_option_expiries_follow_weekday_and_holiday_rules(today, name, expected):
    got = ins.option_expiries(ins.UNDERLYINGS[name], D(today))
    assert [d.isoformat() for d in got] == expected


def test_futures_are_the_monthly_expiries():
    got = ins.future_expiries(ins.UNDERLYINGS["NIFTY"], D("2026-11-20"))
    assert [d.isoformat() for d in got] == ["2026-11-23", "2026-12-29", "2027-01-26"]


@pytest.mark.parametrize(
    ("day", "text", "dashed"),
    [("2024-11-28", "28NOV24", "28-NOV-24"), ("2026-01-06", "06JAN26", "06-JAN-26")],
)
def test_date_formats_round_trip(day, text, dashed):
    assert cal.fmt_ddmmmyy(D(day)) == text
    assert cal.fmt_dd_mmm_yy(D(day)) == dashed
    assert cal.parse_ddmmmyy(text) == D(day)
    assert cal.parse_ddmmmyy(dashed) == D(day)


@pytest.mark.parametrize("bad", ["", "31FEB26", "28XYZ24", "2024-11-28", "28NOV2024"])
def test_bad_dates_do_not_parse(bad):
    assert cal.parse_ddmmmyy(bad) is None
