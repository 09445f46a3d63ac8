"""Times as a trader reads them, and brokers' timestamps made into instants (pure).

Every page shows an instant one way, `02 Dec 2026, 10:32:29 IST` (static/js/format.js's AM.ist is
the twin for what the pages render themselves); CSVs carry `2026-12-02 10:32:29` in columns named
`…_ist`, which spreadsheets read as a date.

Brokers stamp their rows in their own shapes: `10:15:00` (a time of the trading day only — Dhan's
tradebook), `2026-12-02 10:15:00`, `02-Dec-2026 10:15:00`, ISO with an offset, epoch seconds or
milliseconds. A time without a zone is IST, as every Indian broker means it.
"""

from __future__ import annotations

import datetime as dt
import re

from .calendar import DAY_START, IST, trading_day_start

MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_MONTH = {m.lower(): i for i, m in enumerate(MONTHS, 1)}

_TIME = r"(?P<H>\d{1,2}):(?P<M>\d{2})(?::(?P<S>\d{2})(?:\.(?P<f>\d{1,6})\d*)?)?"
_ZONE = r"(?P<z>Z|[+-]\d{2}:?\d{2})?"
_SHAPES = [
    # 10:15:00 — a time of the trading day the book was read on
    re.compile(rf"{_TIME}(?:\s*(?P<ampm>[AaPp][Mm]))?"),
    # 2026-12-02 10:15:00, 2026-12-02T04:45:00Z, 2026-12-02T10:15:00+05:30
    re.compile(rf"(?P<y>\d{{4}})-(?P<m>\d{{1,2}})-(?P<d>\d{{1,2}})(?:[T ]{_TIME})?{_ZONE}"),
    # 02-Dec-2026 10:15:00, 02 DEC 2026 10:15, 02/12/2026 10:15:00, 02-12-2026 10:15:00
    re.compile(rf"(?P<d>\d{{1,2}})[-/ ](?P<m>[A-Za-z]{{3}}|\d{{1,2}})[-/ ](?P<y>\d{{4}})(?:[ ,T]+{_TIME})?"),
]


def _local(t: dt.datetime) -> dt.datetime:
    """The instant in IST; a naive datetime is taken as IST already."""
    return t.replace(tzinfo=IST) if t.tzinfo is None else t.astimezone(IST)


def ist(t: dt.datetime | str | None, empty: str = "—") -> str:
    """2026-12-02 05:02:29 UTC → "02 Dec 2026, 10:32:29 IST"; None → `empty`. An ISO string (as
    live payloads carry times) is read first; any other text is no instant and shows `empty`."""
    if isinstance(t, str):
        try:
            t = dt.datetime.fromisoformat(t)
        except ValueError:
            return empty
    if not isinstance(t, dt.datetime):
        return empty
    x = _local(t)
    return f"{x.day:02d} {MONTHS[x.month - 1]} {x.year}, {x:%H:%M:%S} IST"


def ist_csv(t: dt.datetime | None) -> str:
    """The instant for a CSV cell: "2026-12-02 10:32:29" (IST), "" for None."""
    return _local(t).strftime("%Y-%m-%d %H:%M:%S") if isinstance(t, dt.datetime) else ""


def _bare(t: dt.time, read_at: dt.datetime) -> dt.datetime:
    """A time of day in the broker's trading day that `read_at` falls in (03:00 IST to 03:00 the
    next day, when OpenAlgo clears its books): 01:30 read at 02:00 is that night, not a day later."""
    start = trading_day_start(read_at)
    at = dt.datetime.combine(start.date(), t, IST)
    return at + dt.timedelta(days=1) if t < DAY_START else at


def broker_time(value, read_at: dt.datetime) -> dt.datetime | None:
    """A broker's timestamp as an aware instant (IST), or None when it is empty or no known shape.
    `read_at` is when the book holding it was read: a bare time belongs to that trading day."""
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return _epoch(value)
    text = str(value).strip()
    if not text:
        return None
    if re.fullmatch(r"\d+(\.\d+)?", text):
        return _epoch(float(text))
    for i, shape in enumerate(_SHAPES):
        m = shape.fullmatch(text)
        if m:
            try:
                return _build(i, m, read_at)
            except ValueError:  # 31-Feb, 25:00: a shape we know holding no real time
                return None
    return None


def _epoch(n: float) -> dt.datetime | None:
    if n <= 0:
        return None
    if n >= 1e11:  # milliseconds (WebSocket ticks); seconds reach 1e11 only in the year 5138
        n /= 1000
    try:
        return dt.datetime.fromtimestamp(n, IST)
    except (OverflowError, OSError, ValueError):
        return None


def _clock(m: re.Match) -> dt.time:
    if m["H"] is None:
        return dt.time(0)
    hour = int(m["H"])
    ampm = (m.groupdict().get("ampm") or "").lower()
    if ampm:
        if not 1 <= hour <= 12:
            raise ValueError("hour out of range for AM/PM")
        hour = hour % 12 + (12 if ampm == "pm" else 0)
    micro = int((m["f"] or "0").ljust(6, "0"))
    return dt.time(hour, int(m["M"]), int(m["S"] or 0), micro)


def _build(shape: int, m: re.Match, read_at: dt.datetime) -> dt.datetime:
    t = _clock(m)
    if shape == 0:
        return _bare(t, read_at)
    month = m["m"]
    mon = _MONTH.get(month.lower()) if month.isalpha() else int(month)
    if mon is None:
        raise ValueError(f"no month {month!r}")
    at = dt.datetime.combine(dt.date(int(m["y"]), mon, int(m["d"])), t)
    zone = m.groupdict().get("z")
    if not zone:
        return at.replace(tzinfo=IST)
    if zone == "Z":
        return at.replace(tzinfo=dt.UTC).astimezone(IST)
    sign = -1 if zone[0] == "-" else 1
    hh, mm = int(zone[1:3]), int(zone[-2:])
    return at.replace(tzinfo=dt.timezone(sign * dt.timedelta(hours=hh, minutes=mm))).astimezone(IST)
