"""market_status from worked examples (pure), and the seeded database calendar."""

import datetime as dt

import pytest

from core import calendar as c

IST = c.IST
T = dt.time
NSE = c.Calendar(
    sessions=tuple(c.Session(d, T(9, 15), T(15, 30)) for d in range(5))
    + tuple(c.Session(d, T(9, 0), T(9, 8), "pre_open") for d in range(5)),
    holidays={dt.date(2026, 11, 24): "Guru Nanak Jayanti", dt.date(2025, 10, 21): "Diwali"},
    specials=(
        c.Special(dt.date(2025, 10, 21), T(13, 45), T(14, 45), "Muhurat"),
        c.Special(dt.date(2026, 2, 1), T(10, 0), T(15, 30), "Budget Sunday"),
    ),
)


def at(y, m, d, hh, mm):
    return dt.datetime(y, m, d, hh, mm, tzinfo=IST)


@pytest.mark.parametrize(
    ("now", "state", "next_open"),
    [
        (at(2026, 11, 20, 10, 0), "open", at(2026, 11, 23, 9, 15)),  # Friday morning
        (at(2026, 11, 20, 9, 5), "pre_open", at(2026, 11, 20, 9, 15)),
        (at(2026, 11, 20, 9, 10), "closed", at(2026, 11, 20, 9, 15)),  # between pre-open and open
        (at(2026, 11, 20, 15, 30), "closed", at(2026, 11, 23, 9, 15)),  # the close is exclusive
        (at(2026, 11, 21, 11, 0), "closed", at(2026, 11, 23, 9, 15)),  # Saturday
        (at(2026, 11, 23, 16, 0), "closed", at(2026, 11, 25, 9, 15)),  # Tuesday 24th is a holiday
        (at(2026, 11, 24, 11, 0), "holiday", at(2026, 11, 25, 9, 15)),
        (at(2025, 10, 21, 14, 0), "special", at(2025, 10, 22, 9, 15)),  # Muhurat on a holiday
        (at(2025, 10, 21, 11, 0), "holiday", at(2025, 10, 21, 13, 45)),
        (at(2026, 2, 1, 11, 0), "special", at(2026, 2, 2, 9, 15)),  # a Sunday special session
    ],
)
def test_market_status(now, state, next_open):
    s = c.market_status(now, NSE)
    assert (s.state, s.next_open) == (state, next_open)


@pytest.mark.parametrize(
    ("now", "active"),
    [
        (at(2026, 11, 20, 9, 1), True),
        (at(2026, 11, 20, 8, 59), False),
        (at(2026, 11, 20, 15, 29), True),
        (at(2026, 11, 20, 15, 31), False),
        (at(2026, 11, 23, 9, 0), True),
        (at(2026, 11, 22, 23, 0), False),
    ],
)
def test_services_start_15_minutes_before_the_open_and_stop_after_the_close(now, active):
    assert c.services_active(now, NSE) is active


def test_always_open_demo_calendar():
    s = c.market_status(at(2026, 11, 22, 23, 0), c.Calendar(always_open=True))
    assert s.is_open and s.state == "open"


def test_utc_input_is_converted():
    assert c.market_status(dt.datetime(2026, 11, 20, 4, 45, tzinfo=dt.UTC), NSE).state == "open"  # 10:15 IST


@pytest.mark.parametrize(
    ("now", "start"),
    [
        (at(2026, 11, 20, 10, 0), at(2026, 11, 20, 3, 0)),
        (at(2026, 11, 20, 3, 0), at(2026, 11, 20, 3, 0)),  # the rollover instant belongs to the new day
        (at(2026, 11, 20, 2, 59), at(2026, 11, 19, 3, 0)),  # before 03:00: still yesterday's books
        (at(2026, 12, 1, 0, 30), at(2026, 11, 30, 3, 0)),  # across a month
        (dt.datetime(2026, 11, 19, 22, 0, tzinfo=dt.UTC), at(2026, 11, 20, 3, 0)),  # 03:30 IST next day
    ],
)
def test_the_brokers_day_starts_at_three_ist(now, start):
    assert c.trading_day_start(now) == start
