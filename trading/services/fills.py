"""Fills: an accepted order's status, polled or pushed on the account's WebSocket, applied once
(a compare-and-set on the filled quantity), and booked into our position."""

from __future__ import annotations

from decimal import Decimal

from django.db import transaction

from accounts.services import account_client
from marketdata.services import interest_register
from openalgo_client.rest import to_decimal

from .. import events, pnl
from ..models import Order, Position
from . import enqueue
from .common import LIVE, Status

TERMINAL = {"complete": Status.COMPLETE, "cancelled": Status.CANCELLED, "rejected": Status.REJECTED}


def order_refresh(*, order_id: int) -> Order:
    """Read one accepted order's status from the broker (fills, cancels, rejects)."""
    order = Order.objects.select_related("account").get(pk=order_id)
    if order.status not in (Status.ACCEPTED, Status.OPEN) or not order.broker_orderid:
        return order
    res = account_client(order.account).orderstatus(orderid=order.broker_orderid, strategy=order.tag)
    if not res.ok or not isinstance(res.data, dict):
        return order
    return _apply_status(order, res.data)


def order_apply_update(*, account_id: int, data: dict) -> Order | None:
    """An `order_update` pushed on the account's WebSocket. Same path as polling; the
    compare-and-set on the filled quantity makes a duplicate or late update a no-op."""
    oid = str(data.get("orderid") or "")
    order = Order.objects.select_related("account").filter(account_id=account_id, broker_orderid=oid).first()
    if order is None or order.status not in (Status.ACCEPTED, Status.OPEN):
        return order  # not ours (reconciliation flags it), or not yet recorded (the poller settles it)
    return _apply_status(order, data)


def _apply_status(order: Order, d: dict) -> Order:
    broker_status = str(d.get("order_status", ""))
    status = TERMINAL.get(broker_status, Status.OPEN)
    avg = to_decimal(d.get("average_price"), None)
    qty = int(to_decimal(d.get("filled_quantity"), Decimal(order.quantity if status == Status.COMPLETE else 0)))
    if not avg:
        # No fill price yet (OpenAlgo's tradebook lag): book nothing, look again next poll.
        qty = order.filled_quantity
        if status == Status.COMPLETE:
            status = Status.OPEN
    with transaction.atomic():
        # Compare-and-set on the filled quantity: two pollers racing apply a fill once.
        changed = Order.objects.filter(
            pk=order.pk, status__in=[Status.ACCEPTED, Status.OPEN], filled_quantity=order.filled_quantity
        ).update(status=status, broker_status=broker_status, filled_quantity=qty, average_price=avg or None)
        if changed and qty > order.filled_quantity and avg:
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
    """Refresh the open orders of one account, at most `limit` a run (1 request/s at a 2 s beat)."""
    qs = Order.objects.filter(account_id=account_id, status__in=LIVE).order_by("updated_at")
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
