"""Market status from a trading calendar (pure). Times are IST; callers pass `now`.

A day is open when one of its weekday's normal sessions covers `now`, unless it is a
holiday. A special session (e.g. Muhurat trading) opens the market on its date and hours even
on a holiday or a Sunday. Services start LEAD before the next open and stop after the close.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo

IST = ZoneInfo("Asia/Kolkata")
LEAD = dt.timedelta(minutes=15)
# Brokers' books roll over in the night: an orderbook holds the orders since 03:00 IST only, and
# an order from before it is answered 404 (OpenAlgo's sandbox clears at the same hour).
DAY_START = dt.time(3, 0)
OPEN, PRE_OPEN, CLOSED, HOLIDAY, SPECIAL = "open", "pre_open", "closed", "holiday", "special"


@dataclass(frozen=True)
class Session:
    weekday: int  # 0 = Monday
    start: dt.time
    end: dt.time
    kind: str = "normal"  # "normal" | "pre_open"


@dataclass(frozen=True)
class Special:
    day: dt.date
    start: dt.time
    end: dt.time
    name: str = ""


@dataclass(frozen=True)
class Calendar:
    sessions: tuple[Session, ...] = ()
    holidays: dict[dt.date, str] = field(default_factory=dict)
    specials: tuple[Special, ...] = ()
    always_open: bool = False


@dataclass(frozen=True)
class MarketStatus:
    state: str
    label: str
    next_open: dt.datetime | None = None
    closes_at: dt.datetime | None = None

    @property
    def is_open(self) -> bool:
        return self.state in (OPEN, SPECIAL)


def _at(day: dt.date, t: dt.time) -> dt.datetime:
    return dt.datetime.combine(day, t, IST)


def _openings(cal: Calendar, day: dt.date) -> list[tuple[dt.datetime, dt.datetime, str]]:
    """(start, end, kind) of everything that trades on `day`, specials included."""
    out = [(_at(day, s.start), _at(day, s.end), SPECIAL) for s in cal.specials if s.day == day]
    if day not in cal.holidays:
        out += [
            (_at(day, s.start), _at(day, s.end), OPEN if s.kind == "normal" else PRE_OPEN)
            for s in cal.sessions
            if s.weekday == day.weekday()
        ]
    return sorted(out)


def next_open(now: dt.datetime, cal: Calendar, horizon_days: int = 21) -> dt.datetime | None:
    local = now.astimezone(IST)
    for d in range(horizon_days):
        day = local.date() + dt.timedelta(days=d)
        for start, _end, kind in _openings(cal, day):
            if kind in (OPEN, SPECIAL) and start > local:
                return start
    return None


def trading_day_start(now: dt.datetime) -> dt.datetime:
    """When the broker's current day began: the last 03:00 IST at or before `now`."""
    local = now.astimezone(IST)
    start = _at(local.date(), DAY_START)
    return start if local >= start else start - dt.timedelta(days=1)


def market_status(now: dt.datetime, cal: Calendar) -> MarketStatus:
    if cal.always_open:
        return MarketStatus(OPEN, "Open (demo calendar: always open)")
    local = now.astimezone(IST)
    today = local.date()
    for start, end, kind in _openings(cal, today):
        if start <= local < end:
            label = {OPEN: "Open", PRE_OPEN: "Pre-open", SPECIAL: "Special session"}[kind]
            return MarketStatus(kind, label, next_open(now, cal), end)
    nxt = next_open(now, cal)
    if today in cal.holidays:
        return MarketStatus(HOLIDAY, f"Holiday: {cal.holidays[today]}", nxt)
    return MarketStatus(CLOSED, "Closed", nxt)


def services_active(now: dt.datetime, cal: Calendar, lead: dt.timedelta = LEAD) -> bool:
    """Broker polling runs from `lead` before an open until the close."""
    status = market_status(now, cal)
    if status.state in (OPEN, SPECIAL, PRE_OPEN):
        return True
    return status.next_open is not None and status.next_open - now.astimezone(IST) <= lead
