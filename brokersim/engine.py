"""One paper account's order engine, as OpenAlgo's sandbox (analyzer) runs it.

Fill rules: MARKET fills at ask (BUY) / bid (SELL), else LTP; a LIMIT that is marketable
at placement fills at LTP; a resting LIMIT fills at its limit once LTP crosses it; SL/SL-M
wait as `trigger pending` until LTP reaches the trigger, then SL-M fills at LTP and SL at
LTP if its limit is satisfied (else it rests as an open LIMIT). Fills are full quantity
unless a `partial_fill` fault is armed. Margin is blocked at placement for orders that add
exposure and released proportionally as positions shrink.

Quantities are in the account's own units. A broker that counts some exchange in contracts
(Zerodha on MCX: lot size 1, one contract = 100 barrels of CRUDEOIL) has those exchanges in
`contract_exchanges`; its positions and trades then carry the lot size as a multiplier, so
P&L, margin and trade value are the same money as the unit-counting position elsewhere.

Daily rollover (`square_off`, `expire_day_orders`, `new_day`): the broker squares off MIS
positions with MARKET orders of its own (no strategy, `placed_by` "broker"), day orders left
unfilled at the close are cancelled as expired, and at 03:00 the day's orders and trades are
gone from the books (kept in `archive` for the ledger) while NRML positions carry over.
"""

from __future__ import annotations

import datetime as dt
import math
import time
from collections import deque
from collections.abc import Callable, Container
from dataclasses import dataclass, field, replace

from . import calendar as cal
from . import instruments as ins
from .faults import MAX_DELAY_S, FaultKind
from .market import Market

OPEN, TRIGGER_PENDING, COMPLETE, CANCELLED, REJECTED = "open", "trigger pending", "complete", "cancelled", "rejected"
BY_API, BY_BROKER = "api", "broker"
SQUARE_OFF_REMARK = "Auto square-off by broker (MIS)"
SQUARE_OFF_CANCEL_REMARK = "Cancelled by broker at MIS square-off"
EXPIRED_REMARK = "Expired at end of day (unfilled DAY order)"
ACTIVE_STATUSES = (OPEN, TRIGGER_PENDING)

EQUITY_MIS_LEVERAGE = 5.0
FUTURES_MARGIN_RATE = 0.10
# A short option carries SPAN-like risk margin on the underlying, not just the premium
# (OpenAlgo's sandbox charges premium only, which would make margin-based sizing meaningless).
OPTION_SELL_MARGIN_RATE = 0.09


class OrderError(Exception):
    """A business rejection answered with HTTP 400 (and, for CNC sells, a rejected order)."""

    def __init__(self, message: str, orderid: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.orderid = orderid


@dataclass
class Order:
    orderid: str
    strategy: str
    symbol: str
    exchange: str
    action: str
    quantity: int
    pricetype: str
    product: str
    price: float
    trigger_price: float
    disclosed_quantity: int
    status: str
    created: dt.datetime
    updated: dt.datetime
    filled_quantity: int = 0
    average_price: float = 0.0
    rejection_reason: str = ""
    blocked_margin: float = 0.0
    partial_limit: int | None = None  # fault: fill at most this much
    hide_avg_polls: int = 0  # fault: orderstatus shows average_price 0 for this many reads
    pending_reads: int = 0  # fault: transient (not yet at the exchange, unmatched) for this many book reads
    modified: bool = False  # XTS brokers show a modified live order as "Replaced"
    placed_by: str = BY_API  # BY_BROKER: the broker's own order (MIS square-off)
    remark: str = ""  # why the broker placed, cancelled or expired it
    expired: bool = False  # cancelled at the close as an unfilled day order
    session: int = 0  # the trading session (day) it was placed in

    @property
    def pending_quantity(self) -> int:
        return self.quantity - self.filled_quantity if self.status in ACTIVE_STATUSES else 0


@dataclass
class Trade:
    tradeid: str
    orderid: str
    strategy: str
    symbol: str
    exchange: str
    action: str
    quantity: int
    price: float
    product: str
    ts: dt.datetime
    multiplier: int = 1  # units per quantity counted (a lot, where the broker counts contracts)
    placed_by: str = BY_API


@dataclass
class Position:
    symbol: str
    exchange: str
    product: str
    quantity: int = 0
    average_price: float = 0.0
    realized_pnl: float = 0.0
    blocked_margin: float = 0.0
    multiplier: int = 1  # units per quantity counted (a lot, where the broker counts contracts)


def apply_fill(pos: Position, signed_qty: int, price: float) -> float:
    """Apply a fill to a position; return the realised P&L it books.

    Adding to a position moves the average price; reducing books (price − avg) × closed
    quantity (sign-aware); crossing through zero books the closed part and opens the rest
    at the fill price.
    """
    q = pos.quantity
    if q == 0 or (q > 0) == (signed_qty > 0):
        new_q = q + signed_qty
        pos.average_price = (pos.average_price * abs(q) + price * abs(signed_qty)) / abs(new_q)
        pos.quantity = new_q
        return 0.0
    closed = min(abs(q), abs(signed_qty))
    direction = 1 if q > 0 else -1
    realized = (price - pos.average_price) * closed * direction * pos.multiplier
    new_q = q + signed_qty
    pos.quantity = new_q
    if new_q == 0:
        pos.average_price = 0.0
    elif (new_q > 0) != (q > 0):
        pos.average_price = price
    pos.realized_pnl += realized
    return realized


@dataclass
class Holding:
    symbol: str
    exchange: str
    quantity: int
    average_price: float


@dataclass
class Account:
    """The state of one simulated OpenAlgo instance's broker account."""

    index: int
    market: Market
    capital: float
    holdings: list[Holding] = field(default_factory=list)
    orders: dict[str, Order] = field(default_factory=dict)
    trades: list[Trade] = field(default_factory=list)
    positions: dict[tuple[str, str, str], Position] = field(default_factory=dict)
    listeners: list = field(default_factory=list)
    # Wall-clock seconds for the position history (positionbook_lag is "as of N seconds ago",
    # in real time: the market clock may be paused or replayed).
    clock: Callable[[], float] = time.monotonic
    # One entry per fill, oldest first, for the last MAX_DELAY_S: (clock, position key, the
    # position as it was before that fill, None if it did not exist). Undoing the fills after
    # a moment, newest first, gives the book as of that moment.
    _history: deque[tuple[float, tuple[str, str, str], Position | None]] = field(default_factory=deque)
    # Exchanges this broker counts in contracts rather than units (set by the broker profile).
    contract_exchanges: frozenset[str] = frozenset()
    # Orders of previous sessions (days), gone from the books but kept for the ledger.
    archive: list[Order] = field(default_factory=list)
    session: int = 0
    _seq: int = 0
    _trade_seq: int = 0

    def clear_books(self) -> None:
        """Drop orders, trades, positions and their history (holdings and capital stay)."""
        self.orders, self.trades, self.positions = {}, [], {}
        self.archive, self.session = [], 0
        self._history.clear()

    # -------------------------------------------------------------- units
    def in_contracts(self, inst: ins.Instrument) -> bool:
        return inst.exchange in self.contract_exchanges and inst.kind in ("future", "option")

    def lot_size(self, inst: ins.Instrument) -> int:
        return 1 if self.in_contracts(inst) else inst.lot_size

    def freeze_qty(self, inst: ins.Instrument) -> int:
        return inst.freeze_qty // inst.lot_size if self.in_contracts(inst) else inst.freeze_qty

    def multiplier(self, inst: ins.Instrument) -> int:
        """Units per quantity counted: the lot size where the broker counts contracts, else 1."""
        return inst.lot_size if self.in_contracts(inst) else 1

    # -------------------------------------------------------------- identifiers
    def _next_orderid(self) -> str:
        self._seq += 1
        return f"{self.market.now.astimezone(cal.IST):%y%m%d}{self.index % 100:02d}{self._seq:06d}"

    def _next_tradeid(self) -> str:
        self._trade_seq += 1
        return f"TRADE-{self.market.now.astimezone(cal.IST):%Y%m%d-%H%M%S}-{self.index:02d}{self._trade_seq:06d}"

    # -------------------------------------------------------------- money
    @property
    def used_margin(self) -> float:
        return sum(p.blocked_margin for p in self.positions.values()) + sum(
            o.blocked_margin for o in self.orders.values() if o.status in ACTIVE_STATUSES
        )

    @property
    def realized_pnl(self) -> float:
        return sum(p.realized_pnl for p in self.positions.values())

    def unrealized(self, pos: Position) -> float:
        if pos.quantity == 0:
            return 0.0
        inst = self.market.lookup(pos.symbol, pos.exchange)
        if inst is None:
            return 0.0
        return (self.market.ltp(inst) - pos.average_price) * pos.quantity * pos.multiplier

    @property
    def unrealized_pnl(self) -> float:
        return sum(self.unrealized(p) for p in self.positions.values())

    @property
    def available_cash(self) -> float:
        return self.capital + self.realized_pnl - self.used_margin

    def margin_for(self, inst: ins.Instrument, action: str, qty: int, price: float, product: str) -> float:
        qty *= self.multiplier(inst)
        if inst.kind == "equity":
            return qty * price / (EQUITY_MIS_LEVERAGE if product == "MIS" else 1.0)
        if inst.kind == "future":
            return qty * price * FUTURES_MARGIN_RATE
        if action == "BUY":
            return qty * price
        spot = self.market.spots[inst.underlying.name]
        return qty * (spot * OPTION_SELL_MARGIN_RATE + price)

    def _position(self, symbol: str, exchange: str, product: str, multiplier: int = 1) -> Position:
        key = (symbol, exchange, product)
        pos = self.positions.get(key)
        if pos is None:
            pos = self.positions[key] = Position(symbol, exchange, product, multiplier=multiplier)
        return pos

    def net_quantity(self, symbol: str, exchange: str, product: str) -> int:
        pos = self.positions.get((symbol, exchange, product))
        return pos.quantity if pos else 0

    def _adds_exposure(self, symbol: str, exchange: str, product: str, action: str, qty: int) -> int:
        """How much of an order opens new exposure (the rest only reduces a position)."""
        q = self.net_quantity(symbol, exchange, product)
        signed = qty if action == "BUY" else -qty
        if q == 0 or (q > 0) == (signed > 0):
            return qty
        return max(qty - abs(q), 0)

    def _record_fill(self, key: tuple[str, str, str], before: Position | None) -> None:
        now = self.clock()
        self._history.append((now, key, before))
        while self._history and self._history[0][0] < now - MAX_DELAY_S:
            self._history.popleft()

    def positions_as_of(self, t: float) -> dict[tuple[str, str, str], Position]:
        """The positions as they stood at clock time `t` (at most MAX_DELAY_S ago): the fills
        after `t` are undone. The live positions are not touched."""
        out = dict(self.positions)
        for ts, key, before in reversed(self._history):
            if ts <= t:
                break
            if before is None:
                out.pop(key, None)
            else:
                out[key] = before
        return out

    def _holding_qty(self, symbol: str, exchange: str) -> int:
        return sum(h.quantity for h in self.holdings if h.symbol == symbol and h.exchange == exchange)

    # -------------------------------------------------------------- events
    def _emit(self, order: Order) -> None:
        for listener in list(self.listeners):
            listener(order)

    # -------------------------------------------------------------- placing
    def place(
        self,
        *,
        strategy: str,
        symbol: str,
        exchange: str,
        action: str,
        quantity: float,
        pricetype: str = "MARKET",
        product: str = "MIS",
        price: float = 0.0,
        trigger_price: float = 0.0,
        disclosed_quantity: int = 0,
        fault: dict | None = None,
        placed_by: str = BY_API,
        remark: str = "",
    ) -> Order:
        action = action.upper()
        inst = self.market.lookup(symbol, exchange)
        if inst is None:
            raise OrderError(f"Symbol '{symbol}' not found for exchange '{exchange}'")
        if not inst.tradable:
            raise OrderError(f"Orders cannot be placed on index {symbol} ({exchange}); indices are quote-only")
        if exchange != "CRYPTO" and not float(quantity).is_integer():
            raise OrderError(f"Fractional quantity ({quantity}) is not allowed for non-crypto exchanges.")
        qty = int(quantity)
        if product == "NRML" and exchange in ("NSE", "BSE"):
            raise OrderError("NRML product is not allowed for equity segment. Use CNC or MIS.")
        if product == "CNC" and exchange in ins.FNO_EXCHANGES:
            raise OrderError("CNC product is not allowed for derivatives. Use NRML or MIS.")
        lot, freeze = self.lot_size(inst), self.freeze_qty(inst)
        if qty % lot:
            raise OrderError(f"Quantity must be in multiples of lot size {lot} for {symbol}")
        if freeze and qty > freeze:
            raise OrderError(f"Quantity {qty} exceeds freeze quantity {freeze} for {symbol}. Use splitorder.")
        if pricetype in ("LIMIT", "SL") and price <= 0:
            raise OrderError(f"Price is required for {pricetype} orders")
        if pricetype in ("SL", "SL-M") and trigger_price <= 0:
            raise OrderError(f"Trigger price is required for {pricetype} orders")
        now = self.market.now
        fields = (strategy, symbol, exchange, action, qty, pricetype, product, price, trigger_price, disclosed_quantity)
        if product == "CNC" and action == "SELL":
            held = self._holding_qty(symbol, exchange) + max(self.net_quantity(symbol, exchange, "CNC"), 0)
            if qty > held:
                orderid = self._next_orderid()
                reason = f"Insufficient holdings to sell {qty} {symbol}: holding {held}"
                self.orders[orderid] = Order(
                    orderid, *fields, REJECTED, now, now, rejection_reason=reason, session=self.session
                )
                raise OrderError(reason, orderid)
        quote = self.market.quote(inst)
        basis = {"MARKET": quote.ltp, "LIMIT": price, "SL": price, "SL-M": trigger_price}[pricetype]
        opening = self._adds_exposure(symbol, exchange, product, action, qty)
        if product == "CNC" and action == "SELL":
            opening = 0
        need = self.margin_for(inst, action, opening, basis, product) if opening else 0.0
        if need > self.available_cash + 1e-9:
            raise OrderError(f"Insufficient funds. Required margin: {need:.2f}, Available: {self.available_cash:.2f}")
        status = OPEN if pricetype in ("MARKET", "LIMIT") else TRIGGER_PENDING
        order = Order(
            self._next_orderid(),
            *fields,
            status,
            now,
            now,
            blocked_margin=need,
            placed_by=placed_by,
            remark=remark,
            session=self.session,
        )
        self.orders[order.orderid] = order
        fault = fault or {}
        if fault.get("kind") == FaultKind.REJECT:
            order.status = REJECTED
            order.blocked_margin = 0.0
            order.rejection_reason = str(fault.get("value") or "RMS: Rejected by broker risk check (simulated)")
            self._emit(order)
            return order
        if fault.get("kind") == FaultKind.PARTIAL_FILL:
            frac = float(fault.get("value") or 0.5)
            order.partial_limit = max(lot, int(qty * frac) // lot * lot)
        if fault.get("kind") == FaultKind.LATE_AVERAGE_PRICE:
            order.hide_avg_polls = int(fault.get("value") or 3)
        if fault.get("kind") == FaultKind.PENDING_READS:
            order.pending_reads = int(fault.get("value") or 3)
        self._emit(order)
        self._try_fill(order, inst, at_placement=True)
        return order

    # -------------------------------------------------------------- matching
    def _try_fill(self, order: Order, inst: ins.Instrument, at_placement: bool = False) -> None:
        if order.pending_reads > 0:
            return  # not at the exchange yet
        q = self.market.quote(inst)
        ltp = q.ltp
        if not (ltp > 0 and math.isfinite(ltp)):
            return
        buy = order.action == "BUY"
        if order.status == TRIGGER_PENDING:
            if (buy and ltp >= order.trigger_price) or (not buy and ltp <= order.trigger_price):
                if order.pricetype == "SL-M" or (buy and ltp <= order.price) or (not buy and ltp >= order.price):
                    self._fill(order, inst, ltp)
                else:
                    order.status = OPEN
                    order.updated = self.market.now
                    self._emit(order)
            return
        if order.status != OPEN:
            return
        if order.pricetype == "MARKET":
            side = q.ask if buy else q.bid
            self._fill(order, inst, side if side > 0 else ltp)
        elif order.pricetype in ("LIMIT", "SL") and ((buy and ltp <= order.price) or (not buy and ltp >= order.price)):
            self._fill(order, inst, ltp if at_placement else order.price)

    def _fill(self, order: Order, inst: ins.Instrument, price: float) -> None:
        remaining = order.quantity - order.filled_quantity
        qty = remaining
        if order.partial_limit is not None:
            qty = min(remaining, max(order.partial_limit - order.filled_quantity, 0))
            if qty == 0:
                return
        now = self.market.now
        prior = self.positions.get((order.symbol, order.exchange, order.product))
        self._record_fill((order.symbol, order.exchange, order.product), replace(prior) if prior else None)
        pos = self._position(order.symbol, order.exchange, order.product, self.multiplier(inst))
        signed = qty if order.action == "BUY" else -qty
        # Margin: release what the order blocked for this part, then re-block at the fill price.
        released_order = order.blocked_margin * (qty / remaining) if remaining else 0.0
        order.blocked_margin -= released_order
        before = pos.quantity
        closed = 0 if before == 0 or (before > 0) == (signed > 0) else min(abs(before), qty)
        if closed and before:
            pos.blocked_margin -= pos.blocked_margin * closed / abs(before)
        apply_fill(pos, signed, price)
        opened = qty - closed
        if opened and not (order.product == "CNC" and order.action == "SELL"):
            pos.blocked_margin += self.margin_for(inst, order.action, opened, price, order.product)
        if pos.quantity == 0:
            pos.blocked_margin = 0.0
        order.average_price = (order.average_price * order.filled_quantity + price * qty) / (
            order.filled_quantity + qty
        )
        order.filled_quantity += qty
        if order.filled_quantity == order.quantity:
            order.status = COMPLETE
            order.blocked_margin = 0.0
        else:
            order.status = OPEN
        order.updated = now
        self.trades.append(
            Trade(
                self._next_tradeid(),
                order.orderid,
                order.strategy,
                order.symbol,
                order.exchange,
                order.action,
                qty,
                price,
                order.product,
                now,
                pos.multiplier,
                order.placed_by,
            )
        )
        if order.product == "CNC" and order.action == "SELL":
            self._consume_holdings(order.symbol, order.exchange, qty)
        self._emit(order)

    def _consume_holdings(self, symbol: str, exchange: str, qty: int) -> None:
        """A CNC sell delivers from holdings (brokers show it as a negative day position too)."""
        for h in self.holdings:
            if h.symbol == symbol and h.exchange == exchange and qty > 0:
                take = min(h.quantity, qty)
                h.quantity -= take
                qty -= take
        self.holdings = [h for h in self.holdings if h.quantity > 0]

    def on_tick(self) -> None:
        """Re-check resting orders against the new prices."""
        for order in list(self.orders.values()):
            if order.status in ACTIVE_STATUSES:
                inst = self.market.lookup(order.symbol, order.exchange)
                if inst is not None:
                    self._try_fill(order, inst)

    # -------------------------------------------------------------- modify / cancel
    def get(self, orderid: str) -> Order | None:
        return self.orders.get(str(orderid))

    def modify(
        self,
        orderid: str,
        *,
        pricetype: str,
        price: float,
        quantity: float,
        trigger_price: float,
        disclosed_quantity: int,
    ) -> Order:
        order = self.get(orderid)
        if order is None:
            raise LookupError(orderid)
        if order.status not in ACTIVE_STATUSES:
            raise OrderError(f"Cannot modify order in {order.status} status")
        inst = self.market.lookup(order.symbol, order.exchange)
        qty = int(quantity)
        if inst is not None and qty % self.lot_size(inst):
            raise OrderError(f"Quantity must be in multiples of lot size {self.lot_size(inst)} for {order.symbol}")
        if pricetype in ("LIMIT", "SL") and price <= 0:
            raise OrderError(f"Price is required for {pricetype} orders")
        if pricetype in ("SL", "SL-M") and trigger_price <= 0:
            raise OrderError(f"Trigger price is required for {pricetype} orders")
        order.pricetype = pricetype
        order.price = price if pricetype in ("LIMIT", "SL") else 0.0
        order.trigger_price = trigger_price if pricetype in ("SL", "SL-M") else 0.0
        order.quantity = max(qty, order.filled_quantity)
        order.disclosed_quantity = disclosed_quantity
        order.modified = True
        order.status = TRIGGER_PENDING if pricetype in ("SL", "SL-M") else OPEN
        order.updated = self.market.now
        self._emit(order)
        if inst is not None:
            self._try_fill(order, inst, at_placement=True)
        return order

    def cancel(self, orderid: str, remark: str = "", expired: bool = False) -> Order:
        order = self.get(orderid)
        if order is None:
            raise LookupError(orderid)
        if order.status not in ACTIVE_STATUSES:
            raise OrderError(f"Cannot cancel order in {order.status} status")
        order.status = CANCELLED
        order.blocked_margin = 0.0
        order.updated = self.market.now
        order.remark = remark or order.remark
        order.expired = expired
        self._emit(order)
        return order

    def open_orders(self) -> list[Order]:
        return [o for o in self.orders.values() if o.status in ACTIVE_STATUSES]

    # -------------------------------------------------------------- daily rollover
    def square_off(self, exchanges: Container[str] | None = None) -> list[Order]:
        """The broker's MIS square-off (15:15; MCX 23:30): open MIS orders are cancelled, then
        each open MIS position is closed by a MARKET order the broker places itself. Returns
        those orders. A position whose contract is no longer listed stays (nothing to trade)."""
        for o in self.open_orders():
            if o.product == "MIS" and (exchanges is None or o.exchange in exchanges):
                self.cancel(o.orderid, SQUARE_OFF_CANCEL_REMARK)
        placed = []
        for pos in list(self.positions.values()):
            if pos.product != "MIS" or pos.quantity == 0 or (exchanges is not None and pos.exchange not in exchanges):
                continue
            try:
                placed.append(
                    self.place(
                        strategy="",
                        symbol=pos.symbol,
                        exchange=pos.exchange,
                        action="SELL" if pos.quantity > 0 else "BUY",
                        quantity=abs(pos.quantity),
                        product="MIS",
                        placed_by=BY_BROKER,
                        remark=SQUARE_OFF_REMARK,
                    )
                )
            except OrderError:
                continue
        return placed

    def expire_day_orders(self, exchanges: Container[str] | None = None) -> list[Order]:
        """At the close every order still open is a DAY order left unfilled: it ends cancelled
        (marked expired, which a profile may show as such)."""
        return [
            self.cancel(o.orderid, EXPIRED_REMARK, expired=True)
            for o in self.open_orders()
            if exchanges is None or o.exchange in exchanges
        ]

    def new_day(self) -> None:
        """03:00: the day's orders and trades leave the books (the archive keeps the orders for
        the ledger). The day's realised P&L settles into capital; open NRML (and any MIS the
        square-off could not close) carry over at their average price; a CNC buy becomes a
        holding (paid for from capital), a CNC sell's proceeds are credited."""
        self.archive.extend(sorted(self.orders.values(), key=lambda o: (o.created, o.orderid)))
        carried: dict[tuple[str, str, str], Position] = {}
        for key, pos in self.positions.items():
            self.capital += pos.realized_pnl
            if pos.quantity == 0:
                continue
            if pos.product == "CNC":
                value = pos.quantity * pos.average_price
                self.capital -= value
                if pos.quantity > 0:
                    self._add_holding(pos.symbol, pos.exchange, pos.quantity, pos.average_price)
                continue
            carried[key] = replace(pos, realized_pnl=0.0)
        self.orders, self.trades, self.positions = {}, [], carried
        self._history.clear()
        self.session += 1

    def _add_holding(self, symbol: str, exchange: str, qty: int, price: float) -> None:
        for h in self.holdings:
            if h.symbol == symbol and h.exchange == exchange:
                h.average_price = (h.average_price * h.quantity + price * qty) / (h.quantity + qty)
                h.quantity += qty
                return
        self.holdings.append(Holding(symbol, exchange, qty, price))
