"""Fills: an accepted order's status, polled or pushed on the account's WebSocket, applied once
(a compare-and-set on the filled quantity), and booked into our position.

A status can be stale or thin, so nothing it says moves backwards: the filled quantity never
falls, a known average price is never replaced by "0" (the live profile shows 0.0 until an order
completes), and a terminal status that carries no filled quantity (the live profile's cancelled
or rejected) is settled from the tradebook, where a partial fill before the cancel shows.
Polling is fair: least recently polled first, every poll stamped, so resting orders cannot take
every slot; an order without a broker id is not polled but settled from the orderbook.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from django.db import transaction
from django.db.models import F
from django.utils import timezone

from accounts.services import account_client
from marketdata.services import interest_register
from openalgo_client.rest import to_decimal

from .. import events, pnl
from ..models import Order, Position
from . import enqueue
from .common import LIVE, Status
from .outcome import exit_attempt_failed

TERMINAL = {"complete": Status.COMPLETE, "cancelled": Status.CANCELLED, "rejected": Status.REJECTED}


def order_refresh(*, order_id: int, now: dt.datetime | None = None) -> Order:
    """Read one accepted order's status from the broker (fills, cancels, rejects)."""
    order = Order.objects.select_related("account").get(pk=order_id)
    if order.status not in LIVE:
        return order
    if not order.broker_orderid:
        return _settle_without_id(order)
    Order.objects.filter(pk=order.pk).update(polled_at=now or timezone.now())
    res = account_client(order.account).orderstatus(orderid=order.broker_orderid, strategy=order.tag)
    if not res.ok or not isinstance(res.data, dict):
        return order
    return _apply_status(order, res.data)


def _settle_without_id(order: Order) -> Order:
    """Accepted, but no broker id to ask about (recorded before "success without an orderid"
    became unknown): it is looked for in the orderbook like any unknown order."""
    if Order.objects.filter(pk=order.pk, status=order.status, broker_orderid__isnull=True).update(
        status=Status.UNKNOWN, absent_reads=0, last_error="accepted without an order id: looking in the orderbook"
    ):
        enqueue.reconcile_later(order.pk, countdown=0)
    order.refresh_from_db()
    events.order_changed(order)
    return order


def order_apply_update(*, account_id: int, data: dict) -> Order | None:
    """An `order_update` pushed on the account's WebSocket. Same path as polling; the
    compare-and-set on the filled quantity makes a duplicate or late update a no-op."""
    oid = str(data.get("orderid") or "")
    order = Order.objects.select_related("account").filter(account_id=account_id, broker_orderid=oid).first()
    if order is None or order.status not in (Status.ACCEPTED, Status.OPEN):
        return order  # not ours (reconciliation flags it), or not yet recorded (the poller settles it)
    return _apply_status(order, data)


def _traded(order: Order) -> tuple[int, Decimal | None] | None:
    """The quantity and average price of `order`'s trades in the broker's tradebook (None when
    the tradebook cannot be read)."""
    res = account_client(order.account).tradebook()
    if not res.ok or not isinstance(res.data, list):
        return None
    qty, value = 0, Decimal(0)
    for row in res.data:
        if isinstance(row, dict) and str(row.get("orderid")) == order.broker_orderid:
            q = int(to_decimal(row.get("quantity")))
            qty += q
            value += q * to_decimal(row.get("average_price") or row.get("price"))
    return qty, (value / qty if qty else None)


def _apply_status(order: Order, d: dict) -> Order:
    broker_status = str(d.get("order_status", ""))
    status = TERMINAL.get(broker_status.strip().lower(), Status.OPEN)
    avg = to_decimal(d.get("average_price"), None) or None  # 0 means "not known yet", never a price
    known = order.filled_quantity
    if d.get("filled_quantity") not in (None, ""):
        qty = int(to_decimal(d.get("filled_quantity")))
    elif status == Status.COMPLETE:
        qty = order.quantity
    elif status in (Status.CANCELLED, Status.REJECTED):
        # Terminal, and no filled quantity in it: whatever filled before the cancel is in the tradebook.
        traded = _traded(order)
        if traded is None:
            qty, status = known, Status.OPEN  # not final until the fills are known: look again
        else:
            qty, avg = traded[0], traded[1] or avg
    else:
        qty = known
    qty = max(qty, known)  # a stale status never takes a fill back
    if qty > known and not avg:
        # Filled, but no fill price yet (OpenAlgo's tradebook lag): book nothing, look again.
        qty, status = known, Status.OPEN
    if status == Status.REJECTED and order.reduce_only and qty == 0:
        # An exit the broker refused is not the end of it: tried again, spaced, then attention.
        why = f"the broker rejected order {order.broker_orderid}"
        reason = d.get("rejection_reason") or d.get("message")
        exit_attempt_failed(order, why=f"{why}: {reason}" if reason else why)
        order.refresh_from_db()
        events.order_changed(order)
        return order
    average = avg if qty > known else order.average_price  # a known average never vanishes
    with transaction.atomic():
        # Compare-and-set on the filled quantity: two pollers racing apply a fill once.
        changed = Order.objects.filter(
            pk=order.pk, status__in=[Status.ACCEPTED, Status.OPEN], filled_quantity=known
        ).update(status=status, broker_status=broker_status[:30], filled_quantity=qty, average_price=average)
        if changed and qty > known:
            _apply_fill(order, qty, avg)
        order.refresh_from_db()
        if changed:
            events.order_changed(order)
    return order


def _apply_fill(order: Order, new_qty: int, new_avg: Decimal) -> None:
    """Book the newly filled part of `order` (quantity and price of the delta) into its position."""
    old_qty, old_avg = order.filled_quantity, order.average_price or Decimal(0)
    delta = new_qty - old_qty
    price = (new_avg * new_qty - old_avg * old_qty) / delta
    pos, _ = Position.objects.select_for_update().get_or_create(
        account=order.account, symbol=order.symbol, exchange=order.exchange, product=order.product
    )
    state = pnl.apply_fill(
        pnl.Position(pos.quantity, pos.average_price, pos.realized), pnl.Fill(order.action, delta, price)
    )
    pos.quantity, pos.average_price, pos.realized = state.quantity, state.average_price, state.realized
    pos.save()
    pos.account = order.account
    events.position_changed(pos)
    transaction.on_commit(positions_register_interest)


def positions_register_interest() -> None:
    """Open positions are what the feed must stream for P&L and risk (marketdata interest)."""
    keys = {f"{e}:{s}": 1 for e, s in Position.objects.exclude(quantity=0).values_list("exchange", "symbol")}
    interest_register(owner="positions", keys=keys)


def orders_poll_account(*, account_id: int, limit: int = 2) -> int:
    """Refresh the open orders of one account, at most `limit` a run (1 request/s at a 2 s beat),
    least recently polled first. `updated_at` cannot order them: a QuerySet.update() never moves
    it, so the same oldest orders would be polled forever."""
    live = Order.objects.filter(account_id=account_id, status__in=LIVE)
    for pk in live.filter(broker_orderid__isnull=True).values_list("pk", flat=True):
        order_refresh(order_id=pk)  # nothing to poll: settled from the orderbook instead
    qs = live.filter(broker_orderid__isnull=False).order_by(F("polled_at").asc(nulls_first=True), "pk")
    n = 0
    for pk in qs.values_list("pk", flat=True)[:limit]:
        order_refresh(order_id=pk)
        n += 1
    return n


def orders_poll_fan_out() -> int:
    """One poll task per account with open orders, so accounts are polled in parallel."""
    ids = set(Order.objects.filter(status__in=LIVE).values_list("account_id", flat=True))
    for account_id in ids:
        enqueue.poll_account(account_id)
    return len(ids)
