"""Reads: the calendar as a pure value, market status, live prices and feed state."""

from __future__ import annotations

from django.conf import settings
from django.core.cache import cache
from django.utils import timezone

from core import calendar as cal

from .models import MarketHoliday, SpecialTradingSession, TradingHoursTemplate, TradingSession

CALENDAR_CACHE_KEY = "md:calendar:v1"


def calendar_load(market: str = "NSE") -> cal.Calendar:
    """The calendar as a pure value (cached 60 s; edits invalidate it)."""
    if settings.MARKET_CALENDAR == "always_open":
        return cal.Calendar(always_open=True)
    found = cache.get(CALENDAR_CACHE_KEY)
    if found is not None:
        return found
    sessions = tuple(
        cal.Session(s.weekday, s.start, s.end, s.kind)
        for s in TradingSession.objects.filter(is_active=True, template__is_active=True, template__market=market)
    )
    holidays = dict(MarketHoliday.objects.filter(market=market).values_list("date", "name"))
    specials = tuple(
        cal.Special(s.date, s.start, s.end, s.name)
        for s in SpecialTradingSession.objects.filter(is_active=True, market=market)
    )
    value = cal.Calendar(sessions, holidays, specials)
    cache.set(CALENDAR_CACHE_KEY, value, 60)
    return value


def market_status_now() -> cal.MarketStatus:
    return cal.market_status(timezone.now(), calendar_load())


def services_active_now() -> bool:
    return cal.services_active(timezone.now(), calendar_load())


def calendar_invalidate() -> None:
    cache.delete(CALENDAR_CACHE_KEY)


def calendar_markets() -> list[str]:
    """The markets the calendar has weekly sessions for, NSE first."""
    markets = set(TradingHoursTemplate.objects.values_list("market", flat=True)) or {"NSE"}
    return sorted(markets, key=lambda m: (m != "NSE", m))


def holiday_on(date, market: str) -> MarketHoliday | None:
    return MarketHoliday.objects.filter(date=date, market=market).first()


def special_named(date, market: str, name: str) -> SpecialTradingSession | None:
    return SpecialTradingSession.objects.filter(date=date, market=market, name__iexact=name).first()
