"""The calendar as the database seeds it (the pure rules are tested in core/tests/test_calendar.py)."""

import datetime as dt

import pytest
from django.core.cache import cache

from core import calendar as c
from marketdata.selectors import calendar_load

IST = c.IST


def at(y, m, d, hh=10, mm=0):
    return dt.datetime(y, m, d, hh, mm, tzinfo=IST)


@pytest.mark.django_db
def test_seeded_database_calendar(settings):
    settings.MARKET_CALENDAR = "nse"

    cache.delete("md:calendar:v1")
    cal = calendar_load()
    assert dt.date(2026, 11, 24) in cal.holidays and dt.date(2025, 2, 26) in cal.holidays
    assert len([s for s in cal.sessions if s.kind == "normal"]) == 5
    assert c.market_status(at(2026, 11, 24, 11, 0), cal).state == "holiday"
    assert c.market_status(at(2025, 10, 21, 14, 0), cal).state == "special"
