"""IST display of instants, and brokers' timestamps in all their shapes made into instants."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given
from hypothesis import strategies as st

from core.calendar import IST, trading_day_start
from core.timefmt import broker_time, ist, ist_csv

UTC = dt.UTC


@pytest.mark.parametrize(
    ("t", "shown", "csv"),
    [
        (dt.datetime(2026, 12, 2, 5, 2, 29, tzinfo=UTC), "02 Dec 2026, 10:32:29 IST", "2026-12-02 10:32:29"),
        (dt.datetime(2026, 12, 2, 10, 32, 29, 999999, tzinfo=IST), "02 Dec 2026, 10:32:29 IST", "2026-12-02 10:32:29"),
        (dt.datetime(2026, 12, 31, 20, 0, tzinfo=UTC), "01 Jan 2027, 01:30:00 IST", "2027-01-01 01:30:00"),
        (dt.datetime(2026, 9, 7, 9, 15), "07 Sep 2026, 09:15:00 IST", "2026-09-07 09:15:00"),  # naive is IST
        (None, "—", ""),
    ],
)
def test_ist_one_format(t, shown, csv):
    assert ist(t) == shown
    assert ist_csv(t) == csv


def test_ist_says_what_nothing_is():
    assert ist(None, "not yet") == "not yet"
    assert ist("soon", "—") == "—"  # text that is no instant is never printed as if it were
    assert ist(dt.date(2026, 12, 2)) == "—"
    assert ist("2026-12-02T05:02:29.123+00:00") == "02 Dec 2026, 10:32:29 IST"  # live payloads


# Read at 11:00 IST on 02 Dec 2026 unless a case says otherwise.
READ = dt.datetime(2026, 12, 2, 11, 0, tzinfo=IST)


def at(*args) -> dt.datetime:
    return dt.datetime(*args, tzinfo=IST)


@pytest.mark.parametrize(
    ("value", "read_at", "instant"),
    [
        # Dhan's tradebook: a bare time is that trading day in IST
        ("10:15:00", READ, at(2026, 12, 2, 10, 15)),
        ("10:15", READ, at(2026, 12, 2, 10, 15)),
        ("9:15:07", READ, at(2026, 12, 2, 9, 15, 7)),
        ("11:00:05", READ, at(2026, 12, 2, 11, 0, 5)),  # the broker's clock a little ahead of ours
        ("10:15:00 AM", READ, at(2026, 12, 2, 10, 15)),
        ("03:20:00 pm", READ, at(2026, 12, 2, 15, 20)),
        ("12:05:00 AM", at(2026, 12, 3, 0, 30), at(2026, 12, 3, 0, 5)),
        # read after midnight, before the books clear at 03:00: still the day that began at 03:00
        ("23:45:00", at(2026, 12, 3, 1, 0), at(2026, 12, 2, 23, 45)),
        ("00:40:00", at(2026, 12, 3, 1, 0), at(2026, 12, 3, 0, 40)),
        ("15:29:59", at(2026, 12, 3, 2, 59), at(2026, 12, 2, 15, 29, 59)),
        ("15:29:59", at(2026, 12, 3, 3, 0), at(2026, 12, 3, 15, 29, 59)),
        # OpenAlgo sandbox and most brokers
        ("2026-12-02 10:15:00", READ, at(2026, 12, 2, 10, 15)),
        ("2026-12-01 15:29:59", READ, at(2026, 12, 1, 15, 29, 59)),  # a date wins over the read day
        ("2026-12-02T10:15:00", READ, at(2026, 12, 2, 10, 15)),
        ("2026-12-02 10:15:00.123456", READ, at(2026, 12, 2, 10, 15, 0, 123456)),
        ("2026-12-02T04:45:00Z", READ, at(2026, 12, 2, 10, 15)),
        ("2026-12-02T10:15:00+05:30", READ, at(2026, 12, 2, 10, 15)),
        ("2026-12-02T04:45:00+0000", READ, at(2026, 12, 2, 10, 15)),
        ("2026-12-02", READ, at(2026, 12, 2, 0, 0)),
        # OpenAlgo live servers (DD-Mon-YYYY), any case; day-first numeric dates
        ("02-Dec-2026 10:15:00", READ, at(2026, 12, 2, 10, 15)),
        ("02-DEC-2026 10:15:00", READ, at(2026, 12, 2, 10, 15)),
        ("2-dec-2026 10:15", READ, at(2026, 12, 2, 10, 15)),
        ("02 Dec 2026, 10:15:00", READ, at(2026, 12, 2, 10, 15)),
        ("02/12/2026 10:15:00", READ, at(2026, 12, 2, 10, 15)),
        ("02-12-2026 10:15:00", READ, at(2026, 12, 2, 10, 15)),
        # epochs: seconds (history bars, some tradebooks) and milliseconds (ticks), as numbers or text
        (1796186700, READ, at(2026, 12, 2, 10, 15)),
        ("1796186700", READ, at(2026, 12, 2, 10, 15)),
        (1796186700000, READ, at(2026, 12, 2, 10, 15)),
        (1796186700.5, READ, at(2026, 12, 2, 10, 15, 0, 500000)),
        # nothing, or nothing we can read: None (the page shows the broker's text as it came)
        ("", READ, None),
        ("  ", READ, None),
        (None, READ, None),
        (0, READ, None),
        (True, READ, None),
        ("soon", READ, None),
        ("25:00:00", READ, None),
        ("31-Feb-2026 10:00:00", READ, None),
        ("02-Foo-2026 10:00:00", READ, None),
        ("13:00 PM", READ, None),
    ],
)
def test_broker_time_shapes(value, read_at, instant):
    got = broker_time(value, read_at)
    assert got == instant
    if got is not None:
        assert got.utcoffset() == dt.timedelta(hours=5, minutes=30)


@given(st.datetimes(min_value=dt.datetime(2001, 1, 1), max_value=dt.datetime(2099, 1, 1)))
def test_a_bare_time_lands_in_the_trading_day_it_was_read_in(naive):
    """Whatever the time of day and the moment of reading, a bare time becomes the one instant
    with that wall-clock time in the trading day (03:00 to 03:00 IST) the book was read in."""
    read_at = naive.replace(tzinfo=IST)
    for shown in ("00:00:00", "02:59:59", "03:00:00", "09:15:00", "23:59:59"):
        got = broker_time(shown, read_at)
        start = trading_day_start(read_at)
        assert start <= got < start + dt.timedelta(days=1)
        assert f"{got:%H:%M:%S}" == shown
        assert broker_time(ist_csv(got), read_at) == got  # the CSV's form reads back the same
