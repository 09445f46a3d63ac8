"""Settling orders whose send outcome is unknown (invariant I2), and exits that could not be placed.

`order_reconcile` looks for the order in the broker's orderbook (outcome.orderbook_find: by our
tag, else by an unclaimed matching row). Found: it is adopted, never sent again. Not found proves
nothing on its own: OpenAlgo goes on calling the broker after our client gives up, and an
orderbook read can lag. An order is *proven absent* only by `ORDER_ABSENT_READS` reads without
it, each taken at least `ORDER_ABSENCE_WINDOW` seconds after it was sent; or, when the reply did
come back and said it was not placed (a 429 whose own read failed, a refused connection, an
exit's broker reject), by one read. `absent_reads` counts the reads; a reply that came back sets
it to the full count at once (outcome.py). Only a proven absence sends an order again; an
unreadable orderbook leaves it unknown. An entry proven absent after its last attempt is
rejected (it cannot execute any more).

An order sent before the broker's current day began (03:00 IST) is never looked for in today's
orderbook: it cannot be there, and an identical row is someone else's. It is settled instead
(attention.py): never resent, never adopted; an exit in that state needs a human.

Exits (reduce-only orders) that cannot be placed are tried again, `EXIT_RETRY_SECONDS` after their
last attempt and only after a read proves that attempt absent, at most `EXIT_MAX_ATTEMPTS` times;
then the exit needs attention: the account goes to REDUCING, and an audit row and a critical alert
are written with it. `orders_sweep` treats orders stuck in "sending" (a worker died mid-send) the
same way.
"""

from __future__ import annotations

import datetime as dt

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from accounts.choices import AlertKind, AlertLevel
from accounts.services import alert_raise
from core.calendar import trading_day_start

from .. import events
from ..models import Order
from . import enqueue
from .attention import UNKNOWN_AT_ROLLOVER, exit_needs_attention, sent_before_today, settle_at_rollover
from .common import Status, grace
from .outcome import (
    AWAITING_APPROVAL,
    OrderbookUnreadable,
    absence_window,
    attempts_allowed,
    exit_spacing,
    orderbook_find,
    reads_needed,
)
from .send import claim_margin, claim_seconds


def order_reconcile(*, order_id: int, now: dt.datetime | None = None) -> Order:
    """Settle an order whose send outcome is unknown (or whose worker died mid-send)."""
    now = now or timezone.now()
    order = Order.objects.select_related("account").get(pk=order_id)
    if order.status == Status.ATTENTION:
        return _attention_recheck(order, now)
    if order.status not in (Status.UNKNOWN, Status.SENDING):
        return order
    if order.sent_at is None and order.status == Status.SENDING:
        return order  # claimed, never sent: the sweeper gives it back once its worker is gone
    if sent_before_today(order, now):
        # Today's orderbook cannot show it: absence proves nothing, an identical row is not it.
        why = "outcome unknown when the broker's day rolled over"
        return settle_at_rollover(order, why=why, broker_status=UNKNOWN_AT_ROLLOVER)
    proven = order.absent_reads >= reads_needed()  # the reply came back: nothing is in flight
    if not proven and order.sent_at and now - order.sent_at < grace():
        return order  # a request may still be in flight: too early to conclude anything
    try:
        found = orderbook_find(order)
    except OrderbookUnreadable as e:
        Order.objects.filter(pk=order.pk).update(last_error=f"orderbook unreadable: {e}"[:300])
        if order.reduce_only and _unsettled_too_long(order, now):
            exit_needs_attention(order, f"exit outcome unknown and the broker's orderbook unreadable: {e}")
        order.refresh_from_db()
        return order  # unknown stays unknown: never resend on a guess
    if found is not None:
        with transaction.atomic():
            Order.objects.filter(pk=order.pk, status=order.status).update(
                status=Status.ACCEPTED,
                broker_orderid=str(found["orderid"]),
                absent_reads=0,
                broker_status="",
                last_error="found in the orderbook",
            )
    elif order.broker_status == AWAITING_APPROVAL:
        pass  # not approved yet: it appears once a human approves it at OpenAlgo, never resent
    else:
        _absent_read(order, now)
    order.refresh_from_db()
    events.order_changed(order)
    return order


def _absent_read(order: Order, now: dt.datetime) -> None:
    """One orderbook read without the order: counted toward the proof when taken past the window."""
    needed = reads_needed()
    if order.absent_reads < needed and order.account.is_semi_auto:
        # A placement whose reply was lost may sit in OpenAlgo's Action Center, which no read
        # shows: absence from the orderbook proves nothing until it is approved (or the day ends).
        Order.objects.filter(pk=order.pk, status=order.status).update(
            last_error="outcome unknown on a semi-auto account: it may be awaiting approval at OpenAlgo "
            "(its Action Center cannot be read): not sent again"
        )
        return
    if order.absent_reads < needed:
        past = order.sent_at is None or now - order.sent_at >= absence_window()
        reads = order.absent_reads + (1 if past else 0)
        if reads < needed:
            Order.objects.filter(pk=order.pk, status=order.status).update(
                absent_reads=reads,
                last_error=f"not in the orderbook yet ({reads} of {needed} reads past the "
                f"{absence_window().total_seconds():g} s window): not sent again until proven absent",
            )
            enqueue.reconcile_later(order.pk, countdown=_next_read_in(order, now))
            return
        # The proof is stored with the order: an exit given up on it may be retried by a person
        # (selectors._may_be_at_broker), one given up without it may not.
        Order.objects.filter(pk=order.pk, status=order.status).update(absent_reads=reads)
        order.absent_reads = reads
    _settle_absent(order, now)


def _next_read_in(order: Order, now: dt.datetime) -> float:
    """Reads are spread: the first past the window, then a share of the window apart."""
    until_window = (order.sent_at + absence_window() - now).total_seconds() if order.sent_at else 0.0
    return max(until_window, absence_window().total_seconds() / reads_needed(), 1.0)


def _settle_absent(order: Order, now: dt.datetime) -> None:
    """The order is proven absent from the broker: send it again, wait out an exit's spacing, or
    give up (an entry is rejected, an exit needs attention)."""
    allowed = attempts_allowed(order)
    if order.attempts >= allowed:
        if order.reduce_only:
            exit_needs_attention(order, f"exit not placed after {order.attempts} attempts ({order.last_error})")
        else:
            Order.objects.filter(pk=order.pk, status=order.status).update(
                status=Status.REJECTED,
                last_error=f"not placed: absent from the orderbook after {order.attempts} attempts",
            )
        return
    if order.reduce_only and order.sent_at and now < order.sent_at + exit_spacing():
        due = order.sent_at + exit_spacing()
        Order.objects.filter(pk=order.pk, status=order.status).update(
            absent_reads=order.absent_reads,  # proven: the next read only confirms it
            last_error=f"exit not in the orderbook: attempt {order.attempts + 1} of {allowed} "
            f"after {exit_spacing().total_seconds():g} s",
        )
        enqueue.reconcile_later(order.pk, countdown=max((due - now).total_seconds(), 0.1))
        return
    with transaction.atomic():
        if Order.objects.filter(pk=order.pk, status=order.status).update(
            status=Status.PENDING,
            absent_reads=0,
            last_error=f"not in the orderbook: sending again (attempt {order.attempts + 1} of {allowed})",
        ):
            enqueue.send_on_commit(order.account_id, order.batch_id)


def _unsettled_too_long(order: Order, now: dt.datetime) -> bool:
    """An exit whose fate cannot be read for as long as all its retries would have taken."""
    limit = absence_window() + exit_spacing() * settings.EXIT_MAX_ATTEMPTS
    return order.sent_at is not None and now - order.sent_at >= limit


def _attention_recheck(order: Order, now: dt.datetime) -> Order:
    """An exit given up while its fate could not be read may still have been placed: it stays
    watched. Once the orderbook shows it, it is accepted (polling then books its fill) and a
    follow-up alert says so — a person acting on the first alert by hand would flip the position."""
    if order.sent_at is None or sent_before_today(order, now):
        return order  # a previous day's exit: today's orderbook cannot show it
    try:
        found = orderbook_find(order)
    except OrderbookUnreadable:
        return order
    if found is None:
        return order
    with transaction.atomic():
        if Order.objects.filter(pk=order.pk, status=Status.ATTENTION).update(
            status=Status.ACCEPTED,
            broker_orderid=str(found["orderid"]),
            last_error="found in the orderbook after it was given up",
        ):
            alert_raise(
                kind=AlertKind.EXIT_FOUND,
                level=AlertLevel.WARNING,
                account=order.account,
                message=f"{order.action} {order.quantity} {order.symbol} on {order.account.name} was placed at "
                "the broker after all: do not close that position by hand",
                details={"order_id": order.pk, "broker_orderid": str(found["orderid"])},
            )
    order.refresh_from_db()
    events.order_changed(order)
    return order


def orders_sweep(*, now: dt.datetime | None = None) -> int:
    """Recover what a dead worker left behind:

    * orders claimed but never sent (no `sent_at`) for longer than a live worker may hold a claim
      (it gives an unsent claim back itself after ORDER_CLAIM_SECONDS): nothing left for the
      broker, so they are queued again. The attempt stays counted, so the dead claim can never
      match the next one (a worker stamps `sent_at` only on its own claim's attempt);
    * orders sent (or unknown) longer ago than the grace, when no request can still be in flight:
      reconciled against the orderbook;
    * pending orders whose send task was lost (acked, then the worker died): queued again. A
      duplicate task is harmless: the claim lets one sender through. One sent before the broker's
      day rolled over is settled instead, never sent on the new day.
    """
    now = now or timezone.now()
    n = 0
    abandoned = Order.objects.filter(
        status=Status.SENDING,
        sent_at__isnull=True,
        claimed_at__lt=now - dt.timedelta(seconds=claim_seconds() + claim_margin()),
    )
    for pk, account_id, batch_id in abandoned.values_list("pk", "account_id", "batch_id"):
        if abandoned.filter(pk=pk).update(
            status=Status.PENDING, claimed_at=None, last_error="claimed by a worker that never sent it: queued again"
        ):
            events.order_changed(Order.objects.select_related("account").get(pk=pk))
            enqueue.send_now(account_id, batch_id)
            n += 1
    # Sent orders whose outcome is still open, and exits given up today that were sent (they may
    # yet turn up at the broker: see _attention_recheck).
    stuck = Order.objects.filter(
        Q(status__in=[Status.SENDING, Status.UNKNOWN], sent_at__lt=now - grace())
        | Q(status=Status.ATTENTION, sent_at__gte=now - dt.timedelta(days=1))
    )
    for pk in stuck.values_list("pk", flat=True):
        order_reconcile(order_id=pk, now=now)
        n += 1
    # Queued again after a proven absence, but the broker's day rolled over meanwhile: a send now
    # would be a new order on a new day, not the retry it was.
    stale = Order.objects.select_related("account").filter(status=Status.PENDING, sent_at__lt=trading_day_start(now))
    for order in stale:
        settle_at_rollover(order, why="not sent again before the broker's day rolled over", broker_status="")
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
