"""Reads: the calendar as a pure value, market status, live prices and feed state."""

from __future__ import annotations

from django.conf import settings
from django.core.cache import cache
from django.utils import timezone

from core import calendar as cal

from . import store
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


# ------------------------------------------------------------------ the feed, as one user may see it
# The feed is the platform's: it records every account it tried and every instrument anyone wants.
# A user who is no administrator sees their own accounts and instruments; of the rest, only that a
# broker account of the platform streams (no name, id, address, other users' symbols or reasons).
PUBLIC_STATUS = ("state", "ticks_per_s", "ticks_total", "bad_ticks", "last_tick_age_s", "updated")
PUBLIC_DETAIL = ("lock_acquired", "no_accounts")


def own_interest(user) -> set[str]:
    """The instruments `user`'s open positions and open pages asked the feed for."""
    keys = set(store.interest_of(f"positions:{user.pk}"))
    for owner in store.interest_owners(f"page:{user.pk}:"):
        keys |= set(store.interest_of(owner))
    return keys


def feed_seen_by(status: dict, events: list[dict], *, account_ids: set[int], user) -> tuple[dict, list[dict]]:
    mine = status.get("account_id") in account_ids
    seen = {k: status[k] for k in PUBLIC_STATUS if k in status}
    wanted = own_interest(user)
    seen["subscribed"] = sorted(k for k in status.get("subscribed") or [] if k in wanted)
    seen["wanted"] = len(wanted)
    seen["account"] = status.get("account") if mine else None
    seen["account_id"] = status.get("account_id") if mine else None
    seen["ws_url"] = status.get("ws_url") if mine else None
    out = []
    for e in events:
        if e.get("account_id") in account_ids:
            out.append(e)
        elif e.get("account") is None and e.get("account_id") is None:
            # Not about one account: the event is shown, its reason (which may quote another
            # user's broker) only when it is one of the platform's own words.
            out.append({**e, "reason": e.get("reason", "") if e.get("kind") in PUBLIC_DETAIL else ""})
    return seen, out


def interest_dropped_visible_to(user) -> dict[str, str]:
    """Instruments not streamed (an invalid key, over the cap), with why: an administrator sees
    every subscriber's, anyone else those of their own positions and pages."""
    if user.is_staff:
        owners = store.interest_owners()
    else:
        owners = [f"positions:{user.pk}", *store.interest_owners(f"page:{user.pk}:")]
    out: dict[str, str] = {}
    for owner in owners:
        out.update(store.interest_dropped(owner))
    return dict(sorted(out.items()))
