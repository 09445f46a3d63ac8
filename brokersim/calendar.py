"""Exchange calendar facts brokersim needs: holidays, sessions and F&O expiries.

Pure module (standard library only). Times are IST; callers pass dates, never read the clock.

Expiry rules in force since September 2025 (NSE circular on expiry days):
* NSE index options: NIFTY weekly on Tuesday; monthly contracts expire on the last
  Tuesday of the month. BANKNIFTY has monthly contracts only.
* BSE: SENSEX weekly on Thursday, monthly on the last Thursday.
* Futures are monthly, expiring with the monthly options.
* An expiry that falls on a trading holiday moves to the previous trading day.
* MCX commodity futures are monthly on a fixed day of the month (a simplification of MCX's
  contract specifications: crude oil around the 19th, natural gas around the 26th, gold mini
  on the 5th), moved to the previous trading day like the rest. brokersim uses the NSE holiday
  list for MCX too (MCX really keeps its evening session on many of them).

Sessions: NSE/BSE 09:15–15:30, MCX 09:00–23:30. brokersim's market ticks around the clock; the
sessions decide when a contract stops being listed on its expiry day, the day's history bars,
and the daily rollover: MIS square-off at 15:15 (CDS/BCD 16:45, NCDEX 17:00, MCX 23:30, as
OpenAlgo's sandbox does it), unfilled day orders expired at each exchange's close, and the
books of the day cleared at 03:00 (when OpenAlgo's broker sessions expire).
"""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

IST = ZoneInfo("Asia/Kolkata")
MARKET_OPEN = dt.time(9, 15)
MARKET_CLOSE = dt.time(15, 30)
MCX_OPEN = dt.time(9, 0)
MCX_CLOSE = dt.time(23, 30)
NEW_DAY = dt.time(3, 0)  # the books of the previous day are gone from this time on
SQUARE_OFF = dt.time(15, 15)
# MIS square-off times that differ from SQUARE_OFF (OpenAlgo's sandbox defaults).
SQUARE_OFF_AT = {"CDS": dt.time(16, 45), "BCD": dt.time(16, 45), "NCDEX": dt.time(17, 0), "MCX": dt.time(23, 30)}
# Exchanges that keep trading after the equity close (their day orders expire later).
EVENING_CLOSE = {"MCX": MCX_CLOSE, "CDS": dt.time(17, 0), "BCD": dt.time(17, 0), "NCDEX": dt.time(17, 0)}

# NSE/BSE equity and F&O trading holidays (weekday holidays only; weekends are closed anyway).
HOLIDAYS: frozenset[dt.date] = frozenset(
    dt.date.fromisoformat(d)
    for d in (
        # 2025
        "2025-02-26",
        "2025-03-14",
        "2025-03-31",
        "2025-04-10",
        "2025-04-14",
        "2025-04-18",
        "2025-05-01",
        "2025-08-15",
        "2025-08-27",
        "2025-10-02",
        "2025-10-21",
        "2025-10-22",
        "2025-11-05",
        "2025-12-25",
        # 2026
        "2026-01-26",
        "2026-03-03",
        "2026-03-26",
        "2026-03-31",
        "2026-04-03",
        "2026-04-14",
        "2026-05-01",
        "2026-05-28",
        "2026-06-26",
        "2026-09-14",
        "2026-10-02",
        "2026-10-20",
        "2026-11-10",
        "2026-11-24",
        "2026-12-25",
    )
)

MONTHS = ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")


def is_trading_day(day: dt.date) -> bool:
    return day.weekday() < 5 and day not in HOLIDAYS


def previous_trading_day(day: dt.date) -> dt.date:
    """The latest trading day on or before `day`."""
    while not is_trading_day(day):
        day -= dt.timedelta(days=1)
    return day


def _last_weekday_of_month(year: int, month: int, weekday: int) -> dt.date:
    nxt = dt.date(year + (month == 12), month % 12 + 1, 1)
    day = nxt - dt.timedelta(days=1)
    while day.weekday() != weekday:
        day -= dt.timedelta(days=1)
    return day


def monthly_expiries_on_day(today: dt.date, day_of_month: int, count: int) -> list[dt.date]:
    """The next `count` expiries on a fixed day of each month on or after `today` (holiday-adjusted)."""
    out: list[dt.date] = []
    year, month = today.year, today.month
    while len(out) < count:
        exp = previous_trading_day(dt.date(year, month, day_of_month))
        if exp >= today:
            out.append(exp)
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    return out


def monthly_expiries(today: dt.date, weekday: int, count: int) -> list[dt.date]:
    """The next `count` monthly expiries on or after `today` (holiday-adjusted)."""
    out: list[dt.date] = []
    year, month = today.year, today.month
    while len(out) < count:
        exp = previous_trading_day(_last_weekday_of_month(year, month, weekday))
        if exp >= today:
            out.append(exp)
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    return out


def weekly_expiries(today: dt.date, weekday: int, count: int) -> list[dt.date]:
    """The next `count` weekly expiries on or after `today` (holiday-adjusted)."""
    out: list[dt.date] = []
    day = today - dt.timedelta(days=7)
    while len(out) < count:
        day += dt.timedelta(days=1)
        if day.weekday() == weekday:
            exp = previous_trading_day(day)
            if exp >= today and exp not in out:
                out.append(exp)
    return out


def fmt_ddmmmyy(day: dt.date) -> str:
    """28NOV24: the form used inside symbols and in `expiry_date` request fields."""
    return f"{day.day:02d}{MONTHS[day.month - 1]}{day.year % 100:02d}"


def fmt_dd_mmm_yy(day: dt.date) -> str:
    """28-NOV-24: the form /expiry, /symbol and /search return."""
    return f"{day.day:02d}-{MONTHS[day.month - 1]}-{day.year % 100:02d}"


def parse_ddmmmyy(text: str) -> dt.date | None:
    text = text.replace("-", "").upper()
    if len(text) != 7 or text[2:5] not in MONTHS or not (text[:2] + text[5:]).isdigit():
        return None
    try:
        return dt.date(2000 + int(text[5:]), MONTHS.index(text[2:5]) + 1, int(text[:2]))
    except ValueError:
        return None


def open_time(exchange: str = "NSE") -> dt.time:
    return MCX_OPEN if exchange == "MCX" else MARKET_OPEN


def close_time(exchange: str = "NSE") -> dt.time:
    return EVENING_CLOSE.get(exchange, MARKET_CLOSE)


def square_off_time(exchange: str) -> dt.time:
    return SQUARE_OFF_AT.get(exchange, SQUARE_OFF)


def session_bounds(day: dt.date, exchange: str = "NSE") -> tuple[dt.datetime, dt.datetime]:
    return (dt.datetime.combine(day, open_time(exchange), IST), dt.datetime.combine(day, close_time(exchange), IST))


# Exchanges with a session: the daily rollover acts on their MIS positions and day orders.
SESSION_EXCHANGES = ("NSE", "BSE", "NFO", "BFO", "CDS", "BCD", "MCX", "NCDEX")
ROLLOVER_STAGES = ("squareoff", "close", "new_day")


def rollover_events(after: dt.datetime, upto: dt.datetime) -> list[tuple[str, frozenset[str] | None]]:
    """The rollover stages whose time falls in (after, upto], in time order: (stage, exchanges it
    acts on, None for all). Every calendar day has them (brokersim's market never closes)."""
    times: dict[tuple[dt.time, str], set[str]] = {}
    for ex in SESSION_EXCHANGES:
        times.setdefault((square_off_time(ex), "squareoff"), set()).add(ex)
        times.setdefault((close_time(ex), "close"), set()).add(ex)
    a, b = after.astimezone(IST), upto.astimezone(IST)
    out: list[tuple[dt.datetime, int, str, frozenset[str] | None]] = []
    day = a.date()
    while day <= b.date():
        new_day = dt.datetime.combine(day, NEW_DAY, IST)
        if a < new_day <= b:
            out.append((new_day, 0, "new_day", None))
        for (t, stage), exchanges in times.items():
            at = dt.datetime.combine(day, t, IST)
            if a < at <= b:
                out.append((at, 1 if stage == "squareoff" else 2, stage, frozenset(exchanges)))
        day += dt.timedelta(days=1)
    out.sort(key=lambda e: (e[0], e[1]))
    return [(stage, exchanges) for _, _, stage, exchanges in out]
