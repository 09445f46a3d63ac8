"""Position P&L (pure; Decimal money, integer quantities, no clock).

A position is a signed quantity (long > 0, short < 0) at an average price. A fill that adds to
the position moves the average; one that reduces it books realised P&L on the closed quantity,
(fill − average) × closed for a long and (average − fill) × closed for a short; one that crosses
zero books the closed part and opens the remainder at the fill price. Unrealised P&L is
(ltp − average) × quantity, which is negative for a short when the price rises. Averages keep
Decimal's 28 significant digits (an average of 3 fills need not terminate); show money rounded
to the paisa.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal

ZERO = Decimal("0")


@dataclass(frozen=True)
class Fill:
    side: str  # "BUY" | "SELL"
    quantity: int
    price: Decimal

    @property
    def signed(self) -> int:
        return self.quantity if self.side == "BUY" else -self.quantity


@dataclass(frozen=True)
class Position:
    quantity: int = 0
    average_price: Decimal = ZERO
    realized: Decimal = ZERO


@dataclass(frozen=True)
class PnL:
    realized: Decimal
    unrealized: Decimal
    total: Decimal


def apply_fill(pos: Position, fill: Fill) -> Position:
    if fill.quantity <= 0:
        raise ValueError("a fill has a positive quantity")
    q, s, price = pos.quantity, fill.signed, Decimal(fill.price)
    if q == 0 or (q > 0) == (s > 0):
        new_q = q + s
        avg = (pos.average_price * abs(q) + price * abs(s)) / abs(new_q)
        return Position(new_q, avg, pos.realized)
    closed = min(abs(q), abs(s))
    booked = (price - pos.average_price) * closed * (1 if q > 0 else -1)
    new_q = q + s
    if new_q == 0:
        avg = ZERO
    elif (new_q > 0) != (q > 0):
        avg = price  # reversed: the remainder opened at the fill price
    else:
        avg = pos.average_price
    return Position(new_q, avg, pos.realized + booked)


def replay(fills: Iterable[Fill], start: Position | None = None) -> Position:
    pos = start or Position()
    for f in fills:
        pos = apply_fill(pos, f)
    return pos


def unrealized(pos: Position, ltp: Decimal | None) -> Decimal | None:
    """None when the position is open but no usable price is known (never pretend it is 0)."""
    if pos.quantity == 0:
        return ZERO
    if ltp is None:
        return None
    return (Decimal(ltp) - pos.average_price) * pos.quantity


def pnl(pos: Position, ltp: Decimal | None) -> PnL | None:
    u = unrealized(pos, ltp)
    if u is None:
        return None
    return PnL(pos.realized, u, pos.realized + u)


def total(items: Iterable[PnL]) -> PnL:
    r = u = ZERO
    for p in items:
        r += p.realized
        u += p.unrealized
    return PnL(r, u, r + u)
