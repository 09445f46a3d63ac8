"""Settling orders whose send outcome is unknown (invariant I2).

`order_reconcile` looks for the order in the broker's orderbook (by our tag, else by an unclaimed
matching row) once any request still in flight must have ended; only an orderbook that provably
lacks it sends it again. An unreadable orderbook leaves it unknown. `orders_sweep` treats orders
stuck in "sending" (a worker died mid-send) the same way.
"""

from __future__ import annotations

import datetime as dt

from django.db import transaction
from django.utils import timezone

from accounts.services import account_client
from openalgo_client.rest import to_decimal

from .. import events
from ..models import Order
from . import enqueue
from .common import MAX_ATTEMPTS, Status, grace
from .send import CLAIM_MARGIN, CLAIM_SECONDS


def _book_rows(data) -> list[dict]:
    if isinstance(data, dict):
        data = data.get("orders", [])
    return [r for r in data or [] if isinstance(r, dict)]


def order_reconcile(*, order_id: int, now: dt.datetime | None = None) -> Order:
    """Settle an order whose send outcome is unknown (or whose worker died mid-send)."""
    now = now or timezone.now()
    order = Order.objects.select_related("account").get(pk=order_id)
    if order.status not in (Status.UNKNOWN, Status.SENDING):
        return order
    if order.sent_at and now - order.sent_at < grace():
        return order  # a request may still be in flight: too early to conclude anything
    res = account_client(order.account).orderbook()
    if not res.ok:
        Order.objects.filter(pk=order.pk).update(last_error=f"orderbook unreadable: {res.message}"[:300])
        return order  # unknown stays unknown: never resend on a guess
    rows = _book_rows(res.data)
    found = _match(order, rows)
    with transaction.atomic():
        if found is not None:
            Order.objects.filter(pk=order.pk, status=order.status).update(
                status=Status.ACCEPTED, broker_orderid=str(found["orderid"]), last_error="found in the orderbook"
            )
        elif order.attempts < MAX_ATTEMPTS:
            Order.objects.filter(pk=order.pk, status=order.status).update(
                status=Status.PENDING, last_error="not in the orderbook after the timeout: sending again"
            )
            enqueue.send_on_commit(order.account_id, order.batch_id)
        else:
            Order.objects.filter(pk=order.pk, status=order.status).update(
                status=Status.REJECTED, last_error=f"not executed after {order.attempts} attempts"
            )
    order.refresh_from_db()
    events.order_changed(order)
    return order


def _match(order: Order, rows: list[dict]) -> dict | None:
    tagged = [r for r in rows if r.get("strategy") == order.tag]
    if tagged:
        return tagged[0]
    # Brokers whose orderbook carries no strategy: an identical order not already ours.
    claimed = set(
        Order.objects.filter(account=order.account, broker_orderid__isnull=False).values_list(
            "broker_orderid", flat=True
        )
    )
    for r in rows:
        if (
            str(r.get("orderid")) not in claimed
            and r.get("symbol") == order.symbol
            and r.get("exchange") == order.exchange
            and str(r.get("action", "")).upper() == order.action
            and to_decimal(r.get("quantity")) == order.quantity
            and r.get("product") == order.product
            and "strategy" not in r
        ):
            return r
    return None


def orders_sweep(*, now: dt.datetime | None = None) -> int:
    """Recover what a dead worker left behind:

    * orders claimed but never sent (no `sent_at`) for longer than a live worker may hold a claim
      (it gives an unsent claim back itself after send.CLAIM_SECONDS): nothing left for the
      broker, so they are queued again. The attempt stays counted, so the dead claim can never
      match the next one (a worker stamps `sent_at` only on its own claim's attempt);
    * orders sent (or unknown) longer ago than the grace, when no request can still be in flight:
      reconciled against the orderbook;
    * pending orders whose send task was lost (acked, then the worker died): queued again. A
      duplicate task is harmless: the claim lets one sender through.
    """
    now = now or timezone.now()
    n = 0
    abandoned = Order.objects.filter(
        status=Status.SENDING,
        sent_at__isnull=True,
        claimed_at__lt=now - dt.timedelta(seconds=CLAIM_SECONDS + CLAIM_MARGIN),
    )
    for pk, account_id, batch_id in abandoned.values_list("pk", "account_id", "batch_id"):
        if abandoned.filter(pk=pk).update(
            status=Status.PENDING, claimed_at=None, last_error="claimed by a worker that never sent it: queued again"
        ):
            events.order_changed(Order.objects.select_related("account").get(pk=pk))
            enqueue.send_now(account_id, batch_id)
            n += 1
    stuck = Order.objects.filter(status__in=[Status.SENDING, Status.UNKNOWN], sent_at__lt=now - grace())
    for pk in stuck.values_list("pk", flat=True):
        order_reconcile(order_id=pk, now=now)
        n += 1
    waiting = (
        Order.objects.filter(status=Status.PENDING, updated_at__lt=now - dt.timedelta(seconds=5))
        .values_list("account_id", "batch_id")
        .distinct()
    )
    for account_id, batch_id in waiting:
        enqueue.send_now(account_id, batch_id)
        n += 1
    return n
