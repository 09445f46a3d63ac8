"""Exchange calendar facts brokersim needs: holidays, sessions and F&O expiries.

Pure module (standard library only). Times are IST; callers pass dates, never read the clock.

Expiry rules in force since September 2025 (NSE circular on expiry days):
* NSE index options: NIFTY weekly on Tuesday; monthly contracts expire on the last
  Tuesday of the month. BANKNIFTY has monthly contracts only.
* BSE: SENSEX weekly on Thursday, monthly on the last Thursday.
* Futures are monthly, expiring with the monthly options.
* An expiry that falls on a trading holiday moves to the previous trading day.
"""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

IST = ZoneInfo("Asia/Kolkata")
MARKET_OPEN = dt.time(9, 15)
MARKET_CLOSE = dt.time(15, 30)

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


def session_bounds(day: dt.date) -> tuple[dt.datetime, dt.datetime]:
    return (dt.datetime.combine(day, MARKET_OPEN, IST), dt.datetime.combine(day, MARKET_CLOSE, IST))
