"""Reading the broker's books, and comparing them with ours (pure: no Django, no I/O).

OpenAlgo's books are broker-shaped: quantities arrive as strings or numbers, closed positions stay
listed with quantity 0, and a broker may leave a field out. The rule everywhere here: a book we
cannot read with certainty raises `BookUnreadable`; it never reads as "no positions" (I6, B5).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

Key = tuple[str, str, str]  # (exchange, symbol, product)


class BookUnreadable(Exception):
    """The broker answered, but not with a book we can trust."""


class BookUnknown(BookUnreadable):
    """The book parsed, but lacks rows we know must be in it: a failure answered as an empty book
    (Angel turns `status:false` into `[]`, Noren-family brokers an expired session), never proof
    of "no orders" or "flat". Handled exactly like an unreadable book."""


def _number(value, what: str) -> Decimal:
    if isinstance(value, bool) or value is None or value == "":
        raise BookUnreadable(f"{what} is missing")
    try:
        d = Decimal(str(value).strip())
    except InvalidOperation as e:
        raise BookUnreadable(f"{what} is not a number: {str(value)[:20]!r}") from e
    if not d.is_finite():
        raise BookUnreadable(f"{what} is not finite")
    return d


def _rows(data, *keys: str) -> list:
    """The list inside `data` (OpenAlgo nests some books one level down, e.g. holdings)."""
    for k in keys:
        if isinstance(data, Mapping) and k in data:
            data = data[k]
    if not isinstance(data, list):
        raise BookUnreadable(f"expected a list, got {type(data).__name__}")
    return data


def from_result(res, parse):
    """A book out of an OpenAlgo call's result: a failed call is unreadable, like a bad body."""
    if not res.ok:
        raise BookUnreadable(res.message or str(res.reason))
    return parse(res.data)


@dataclass(frozen=True)
class BrokerPosition:
    exchange: str
    symbol: str
    product: str
    quantity: int
    average_price: Decimal

    @property
    def key(self) -> Key:
        return (self.exchange, self.symbol, self.product)


def parse_positionbook(data) -> dict[Key, BrokerPosition]:
    """Net positions by instrument; rows at quantity 0 (closed today) are kept as 0."""
    out: dict[Key, BrokerPosition] = {}
    for i, row in enumerate(_rows(data)):
        if not isinstance(row, Mapping):
            raise BookUnreadable(f"row {i} is not an object")
        try:
            exchange, symbol, product = str(row["exchange"]), str(row["symbol"]), str(row["product"])
        except KeyError as e:
            raise BookUnreadable(f"row {i} has no {e.args[0]}") from e
        qty = _number(row.get("quantity"), f"quantity of {symbol}")
        if qty != qty.to_integral_value():
            raise BookUnreadable(f"quantity of {symbol} is fractional")
        avg = row.get("average_price")
        p = BrokerPosition(exchange, symbol, product, int(qty), _number(avg, "average_price") if avg else Decimal(0))
        # A broker may list one instrument twice (e.g. per segment); quantities add up.
        if p.key in out:
            prev = out[p.key]
            p = BrokerPosition(exchange, symbol, product, prev.quantity + p.quantity, prev.average_price)
        out[p.key] = p
    return out


def parse_tradebook(data) -> list[dict]:
    out = []
    for i, row in enumerate(_rows(data, "trades")):
        if not isinstance(row, Mapping) or "symbol" not in row:
            raise BookUnreadable(f"trade row {i} is malformed")
        qty = _number(row.get("quantity"), f"quantity of {row['symbol']}")
        price = _number(row.get("average_price") or row.get("price") or 0, "price")
        out.append(
            {
                "orderid": str(row.get("orderid", "")),
                "symbol": str(row["symbol"]),
                "exchange": str(row.get("exchange", "")),
                "product": str(row.get("product", "")),
                "action": str(row.get("action", "")).upper(),
                "quantity": int(qty),
                "price": str(price),
                "value": str(price * qty),
                "strategy": str(row.get("strategy", "")),
                "time": str(row.get("timestamp", "")),
            }
        )
    return out


def parse_holdings(data) -> list[dict]:
    out = []
    for i, row in enumerate(_rows(data, "holdings")):
        if not isinstance(row, Mapping) or "symbol" not in row:
            raise BookUnreadable(f"holding row {i} is malformed")
        out.append(
            {
                "symbol": str(row["symbol"]),
                "exchange": str(row.get("exchange", "")),
                "quantity": int(_number(row.get("quantity"), f"quantity of {row['symbol']}")),
                "average_price": str(_number(row.get("average_price") or 0, "average_price")),
                "ltp": str(_number(row.get("ltp") or 0, "ltp")),
                "pnl": str(_number(row.get("pnl") or 0, "pnl")),
            }
        )
    return out


# ------------------------------------------------------------------ empty is not flat
# Some OpenAlgo servers answer a failed book read with 200 and an empty book. Such a book parses,
# so it is checked against what we know must be in it; one that lacks it is unknown, not "none".
def _lacking(what: str, missing: list[str], total: int, empty: bool) -> BookUnknown:
    shown = ", ".join(missing[:3]) + (" …" if len(missing) > 3 else "")
    how = "empty" if empty else f"lacks {len(missing)} of them ({shown})"
    return BookUnknown(f"{what} {how} while we know {total}: read as unknown, not as none")


def orderbook_rows(data) -> list[dict]:
    """The order rows of an orderbook body (OpenAlgo nests them under "orders"; an error answered
    as an empty book gives a bare list)."""
    if isinstance(data, Mapping):
        data = data.get("orders", [])
    if data is None:
        return []
    if not isinstance(data, list):
        raise BookUnreadable(f"expected a list of orders, got {type(data).__name__}")
    return [r for r in data if isinstance(r, Mapping)]


def check_orderbook(rows: Iterable[Mapping], accepted_today: Iterable[str]) -> None:
    """Every order the broker accepted today (its order id is known to us) stays listed in the
    day's orderbook whatever its state; a book without one of them is unknown."""
    known = {str(o) for o in accepted_today if o}
    listed = {str(r.get("orderid")) for r in rows}
    if missing := sorted(known - listed):
        raise _lacking("orderbook", missing, len(known), not listed)


def check_positionbook(book: Mapping[Key, BrokerPosition], held: Mapping[Key, int]) -> None:
    """A broker lists every instrument traded or carried today, a closed one with quantity 0; a
    positionbook without one we hold (non-zero in our books) is unknown, not flat."""
    known = {k for k, q in held.items() if q}
    if missing := sorted(known - set(book)):
        raise _lacking("positionbook", [":".join(k[:2]) for k in missing], len(known), not book)


def check_tradebook(trades: Iterable[Mapping], filled_today: Iterable[str]) -> None:
    """Every order of ours with a fill today has its trades in the day's tradebook."""
    trades = list(trades)
    known = {str(o) for o in filled_today if o}
    listed = {str(t.get("orderid")) for t in trades}
    if missing := sorted(known - listed):
        raise _lacking("tradebook", missing, len(known), not trades)


# ------------------------------------------------------------------ reconciliation
OUTSIDE = "outside"  # the broker holds more (or other) than our fills explain: placed outside AlgoMirror
MISSING = "missing"  # we think it is open, the broker has less: exited outside, or while we were down


@dataclass(frozen=True)
class Difference:
    exchange: str
    symbol: str
    product: str
    ours: int
    broker: int

    @property
    def kind(self) -> str:
        # Same sign and the broker holds more, or the broker holds a position we have none of.
        if self.ours == 0 or (self.ours * self.broker > 0 and abs(self.broker) > abs(self.ours)):
            return OUTSIDE
        return MISSING

    def as_json(self) -> dict:
        return {
            "exchange": self.exchange,
            "symbol": self.symbol,
            "product": self.product,
            "ours": self.ours,
            "broker": self.broker,
            "kind": self.kind,
        }


def compare(ours: Mapping[Key, int], broker: Mapping[Key, BrokerPosition]) -> list[Difference]:
    """Every instrument whose net quantity differs between our books and the broker's."""
    keys = sorted(set(ours) | set(broker))
    out = []
    for k in keys:
        mine = ours.get(k, 0)
        theirs = broker[k].quantity if k in broker else 0
        if mine != theirs:
            out.append(Difference(*k, ours=mine, broker=theirs))
    return out


# ------------------------------------------------------------------ the broker's MIS square-off
# Brokers square intraday (MIS) positions off themselves near the close, with orders of their own
# (none of ours, no tag of ours). Times as OpenAlgo's sandbox does it; other exchanges at 15:15.
SQUARE_OFF = dt.time(15, 15)
SQUARE_OFF_AT = {"CDS": dt.time(16, 45), "BCD": dt.time(16, 45), "NCDEX": dt.time(17, 0), "MCX": dt.time(23, 30)}


@dataclass(frozen=True)
class SquareOff:
    """A position the broker closed itself: its trades, read as one fill of ours."""

    exchange: str
    symbol: str
    product: str
    action: str  # the broker's side: SELL closed a long
    quantity: int
    price: Decimal  # the trades' average
    orderids: tuple[str, ...]


def broker_square_offs(
    diffs: Iterable[Difference],
    trades: Iterable[Mapping],
    *,
    our_orderids: Iterable[str],
    our_tags: Iterable[str],
    ist_time: dt.time,
) -> list[SquareOff]:
    """The differences that are the broker's own MIS square-off, read conservatively — all of:

    * MIS, and the time (IST, today) is past that exchange's square-off time;
    * we hold it (non-zero), the broker lists it at exactly 0;
    * the tradebook has trades for it that are not ours (neither our order id nor our tag), all
      on the closing side, adding up to exactly our quantity.

    Anything less (a partial close, a trade on the opening side, before the time) stays a
    difference for a person to look at.
    """
    ours, tags = {str(o) for o in our_orderids}, set(our_tags)
    foreign: dict[Key, list[Mapping]] = {}
    for t in trades:
        if str(t.get("orderid")) in ours or t.get("strategy") in tags:
            continue
        key = (str(t.get("exchange")), str(t.get("symbol")), str(t.get("product")))
        foreign.setdefault(key, []).append(t)
    out = []
    for d in diffs:
        if d.product != "MIS" or d.ours == 0 or d.broker != 0:
            continue
        if ist_time < SQUARE_OFF_AT.get(d.exchange, SQUARE_OFF):
            continue
        closing = "SELL" if d.ours > 0 else "BUY"
        rows = foreign.get((d.exchange, d.symbol, d.product), [])
        if not rows or any(str(t.get("action", "")).upper() != closing for t in rows):
            continue
        qty = sum(int(t["quantity"]) for t in rows)
        if qty != abs(d.ours):
            continue
        value = sum(Decimal(str(t["price"])) * int(t["quantity"]) for t in rows)
        orderids = tuple(sorted({str(t.get("orderid")) for t in rows}))
        out.append(SquareOff(d.exchange, d.symbol, d.product, closing, qty, value / qty, orderids))
    return out


# ------------------------------------------------------------------ reduce-only (I3)
def exit_allowance(action: str, broker_quantity: int, in_flight: Iterable[tuple[str, int]]) -> int:
    """How much of an exit in direction `action` may still be sent without flipping the position.

    `broker_quantity` is the broker's current net quantity; `in_flight` the (action, remaining)
    of exits already at the broker but not yet filled: they will reduce it too.
    """
    closes_long = action == "SELL"
    if (closes_long and broker_quantity <= 0) or (not closes_long and broker_quantity >= 0):
        return 0
    pending = sum(q for a, q in in_flight if a == action)
    return max(abs(broker_quantity) - pending, 0)


@dataclass(frozen=True)
class ExitCheck:
    """What to do with an exit: send `send` of it now, hold it (`hold`) and look again, or, with
    `send` 0 and no hold, nothing: the position is already closed (or closing)."""

    send: int
    hold: bool
    broker: int  # what the broker's positionbook allows
    ours: int | None  # what our own fills allow (None: we never filled this instrument)


def exit_check(
    action: str,
    requested: int,
    broker_quantity: int | None,
    our_quantity: int | None,
    in_flight: Iterable[tuple[str, int]],
    *,
    settled: bool,
) -> ExitCheck:
    """How much of an exit may go out, from two views of the position that can each lag:

    * the broker's positionbook may not show a fill yet (OpenAlgo serves some brokers' books from
      a cache): read alone, a position the last exit already closed looks open, and a second
      exit flips it;
    * our own fills lag the broker's until an order's status is read.

    The caller reads the in-flight orders' statuses first, then the positionbook, so each view is
    internally consistent apart from that lag. Views that agree are acted on. Views that disagree
    hold the exit while they may still converge (`settled` False: the order is younger than the
    window); after that the smaller, safer one wins (an exit never flips; what only the broker
    shows, e.g. placed outside AlgoMirror, is left for a position repair). Either way, what both
    views allow goes at once. An instrument we never filled has only the broker's view.

    `broker_quantity` None: the positionbook has no row for the instrument. Alone that is flat,
    but while our fills hold it the book is unknown (`BookUnknown`): the exit waits, never denied.
    """
    if broker_quantity is None:
        if our_quantity:
            raise BookUnknown(f"positionbook has no row for a position we hold ({our_quantity}): unknown, not flat")
        broker_quantity = 0
    items = list(in_flight)
    broker = exit_allowance(action, broker_quantity, items)
    if our_quantity is None:
        return ExitCheck(min(broker, requested), False, broker, None)
    ours = exit_allowance(action, our_quantity, items)
    safe = min(broker, ours)
    if safe >= requested or broker == ours or settled:
        return ExitCheck(min(safe, requested), False, broker, ours)
    return ExitCheck(0, True, broker, ours)
