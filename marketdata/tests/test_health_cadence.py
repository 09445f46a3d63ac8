"""The health-check cadence follows the calendar: every 30 s in market hours, every 5 min outside."""

from __future__ import annotations

import datetime as dt

import pytest
import time_machine
from django.core.cache import cache

from accounts import services
from accounts.tests.factories import account_on
from core.calendar import services_active
from marketdata.selectors import calendar_load

IST = dt.timezone(dt.timedelta(hours=5, minutes=30))


@pytest.mark.django_db
def test_checks_are_due_every_30s_in_market_hours_and_every_5min_outside(alice, paper_clean, settings):
    a = account_on(paper_clean[0], owner=alice)
    settings.MARKET_CALENDAR = "nse"
    cache.delete("md:calendar:v1")

    def is_market_hours(now, _):
        return services_active(now, calendar_load())

    with time_machine.travel(dt.datetime(2026, 11, 20, 10, 0, tzinfo=IST), tick=False):
        services.account_check(account_id=a.pk)
    cases = [
        (dt.datetime(2026, 11, 20, 10, 0, 20, tzinfo=IST), []),  # 20 s later, open: not yet
        (dt.datetime(2026, 11, 20, 10, 0, 30, tzinfo=IST), [a.pk]),  # 30 s later, open: due
    ]
    for now, due in cases:
        assert services.accounts_due_for_check(now=now, market_open=is_market_hours(now, "nse")) == due
    with time_machine.travel(dt.datetime(2026, 11, 20, 20, 0, tzinfo=IST), tick=False):
        services.account_check(account_id=a.pk)
    evening = dt.datetime(2026, 11, 20, 20, 2, tzinfo=IST)
    assert not is_market_hours(evening, "nse")
    assert services.accounts_due_for_check(now=evening, market_open=False) == []
    later = dt.datetime(2026, 11, 20, 20, 5, tzinfo=IST)
    assert services.accounts_due_for_check(now=later, market_open=False) == [a.pk]
    # Three strikes at a 30 s cadence: an account that dies is marked down within 90 s.
    assert settings.HEALTH_INTERVAL_OPEN * settings.HEALTH_FAILURES_FOR_DOWN <= 90
