"""Market hours (pure). A placeholder until the trading-calendar issue replaces it with the
database-driven calendar: NSE's regular session on weekdays, or always open for the demo."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

IST = ZoneInfo("Asia/Kolkata")
PRE_OPEN = dt.time(9, 0)  # services start 15 minutes before the 09:15 open
CLOSE = dt.time(15, 40)  # NFO/BFO close at 15:40 since the closing auction


def is_market_hours(now: dt.datetime, calendar: str = "nse") -> bool:
    if calendar == "always_open":
        return True
    local = now.astimezone(IST)
    return local.weekday() < 5 and PRE_OPEN <= local.time() <= CLOSE
