"""What a placeorder reply means for the order (invariant I2), recorded with a compare-and-set
from "sending" (a sweeper that moved the order meanwhile wins).

* accepted, with an orderid → accepted (polled for fills from now on);
* queued for approval at OpenAlgo (semi-auto) → unknown, "awaiting approval": found in the
  orderbook once a human approves it, never sent again;
* a 429: OpenAlgo passes a broker's own 429 through, so the orderbook is read once, now: absent
  → queued again with a growing backoff (bounded); there → adopted;
* the connection was refused (nothing left) → an entry is queued again (bounded);
* an exit refused or unreachable → unknown, with the reply in hand: one orderbook read without it
  proves it absent (reconcile.py), and it goes again after its spacing, or needs attention;
* a definitive refusal of an entry (a 4xx, or status "error") → rejected;
* anything else (timeout, broken connection, 5xx, no status, success without an orderid) →
  unknown: absence needs several orderbook reads past the window before it is sent again.
"""

from __future__ import annotations

import datetime as dt

from django.conf import settings
from django.utils import timezone

from accounts.services import account_client
from core.calendar import trading_day_start
from openalgo_client.rest import Outcome, Reason, Result, to_decimal

from .. import brokerbooks, events
from ..models import Order
from . import bookwatch, enqueue
from .common import MAX_ATTEMPTS, Status, audit_outcome, grace

# Set as broker_status on an order OpenAlgo queued for a human's approval (semi-auto mode): it is
# looked for in the orderbook like any unknown order, and never sent again.
AWAITING_APPROVAL = Order.AWAITING_APPROVAL


def reads_needed() -> int:
    """Orderbook reads without an order, past the window, that prove it absent (reconcile.py)."""
    return max(1, settings.ORDER_ABSENT_READS)


def absence_window() -> dt.timedelta:
    return dt.timedelta(seconds=settings.ORDER_ABSENCE_WINDOW)


def exit_spacing() -> dt.timedelta:
    return dt.timedelta(seconds=settings.EXIT_RETRY_SECONDS)


def attempts_allowed(order: Order) -> int:
    return settings.EXIT_MAX_ATTEMPTS if order.reduce_only else MAX_ATTEMPTS


class OrderbookUnreadable(Exception):
    """The broker's orderbook could not be read: nothing can be concluded about an order."""


def day_start(now: dt.datetime | None = None) -> dt.datetime:
    """When the broker's day began (03:00 IST, as OpenAlgo clears its books): its day books
    (orders, trades) hold what happened since then. One definition with the rollover's."""
    return trading_day_start(now or timezone.now())


def accepted_today(account, *, exclude: int | None = None) -> list[str]:
    """The order ids the broker gave our orders sent today: each stays listed in its orderbook."""
    qs = Order.objects.filter(account=account, broker_orderid__isnull=False, sent_at__gte=day_start())
    if exclude is not None:
        qs = qs.exclude(pk=exclude)
    return list(qs.values_list("broker_orderid", flat=True))


def orderbook_find(order: Order) -> dict | None:
    """The broker's orderbook row of `order`, or None when the orderbook (read now) lacks it.

    A book that lacks an order the broker accepted today is no proof of anything (a failure some
    servers answer as an empty book): unreadable, like a failed read, and counted (bookwatch)."""
    res = account_client(order.account).orderbook()
    try:
        if not res.ok:
            raise brokerbooks.BookUnreadable(res.message or str(res.reason))
        rows = brokerbooks.orderbook_rows(res.data)
        brokerbooks.check_orderbook(rows, accepted_today(order.account, exclude=order.pk))
    except brokerbooks.BookUnreadable as e:
        bookwatch.read_bad(order.account, bookwatch.ORDERS, str(e))
        raise OrderbookUnreadable(str(e)) from e
    bookwatch.read_good(order.account, bookwatch.ORDERS)
    return _match(order, [dict(r) for r in rows])


def _match(order: Order, rows: list[dict]) -> dict | None:
    # An exit is tried again under the same tag, but only once its attempt was proven dead
    # (fills.py): those attempts are no placement. A row's status is no proof: on Zerodha a live
    # order behind a rejected row reads "rejected" (adopted, it is proven live or dead like any).
    claimed = set(
        Order.objects.filter(account=order.account, broker_orderid__isnull=False).values_list(
            "broker_orderid", flat=True
        )
    )
    exits = Order.objects.filter(account=order.account, reduce_only=True, sent_at__gte=day_start())
    for dead in exits.exclude(dead_attempts=[]).values_list("dead_attempts", flat=True):
        claimed.update(dead)
    rows = [r for r in rows if str(r.get("orderid")) not in claimed or str(r.get("orderid")) == order.broker_orderid]
    tagged = [r for r in rows if r.get("strategy") == order.tag]
    if tagged:
        return tagged[0]
    # Brokers whose orderbook carries no strategy: an identical order not already ours.
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


def record_outcome(order: Order, res: Result) -> None:
    check_in = grace().total_seconds()  # unknown: when to look for it in the orderbook
    resend_in = 1.0  # queued again: when to send it
    oid = str(res.body.get("orderid") or "")
    if res.outcome is Outcome.ACCEPTED and oid:
        upd = {"status": Status.ACCEPTED, "broker_orderid": oid, "absent_reads": 0, "last_error": ""}
    elif res.reason is Reason.PENDING_APPROVAL:
        upd = {"status": Status.UNKNOWN, "broker_status": AWAITING_APPROVAL, "last_error": res.message[:300]}
    elif res.reason is Reason.RATE_LIMITED:
        upd = _rate_limited(order)
        check_in = resend_in = max(float(order.attempts), 1.0)  # a backoff growing with the attempts
    elif res.reason is Reason.UNREACHABLE and not order.reduce_only:
        # Nothing reached the broker: queue it again (bounded), never counted as a broker reject.
        upd = {
            "status": Status.PENDING if order.attempts < MAX_ATTEMPTS else Status.REJECTED,
            "last_error": f"{res.message} (attempt {order.attempts} of {MAX_ATTEMPTS})"[:300],
        }
    elif res.reason is Reason.UNREACHABLE or (res.outcome is Outcome.REJECTED and order.reduce_only):
        # An exit that was not placed: it waits, unknown, for the read that confirms it absent and
        # for its spacing (reconcile.py). The reply came back, so that one read is enough.
        upd = {
            "status": Status.UNKNOWN,
            "absent_reads": reads_needed(),
            "last_error": f"exit not placed: {res.message or res.reason}"[:300],
        }
        check_in = exit_spacing().total_seconds()
    elif res.outcome is Outcome.REJECTED:
        upd = {"status": Status.REJECTED, "last_error": res.message[:300]}
    else:  # includes an "accepted" that names no order: only the orderbook can say which it is
        upd = {"status": Status.UNKNOWN, "absent_reads": 0, "last_error": f"{res.reason}: {res.message}"[:300]}
    # Only this attempt's claim may record its outcome (a swept and re-claimed order is not ours).
    mine = Order.objects.filter(pk=order.pk, status=Status.SENDING, attempts=order.attempts, sent_at=order.sent_at)
    if mine.update(**upd):
        for field, value in upd.items():
            setattr(order, field, value)
        audit_outcome(order)  # once per outcome: a retry queued again (pending) is none
    else:
        order.refresh_from_db()  # someone else moved it meanwhile (a sweeper): show what is stored
    events.order_changed(order)
    if order.status == Status.UNKNOWN:
        enqueue.reconcile_later(order.pk, countdown=check_in)
    elif order.status == Status.PENDING:
        enqueue.send_later(order.account_id, order.batch_id, countdown=resend_in)


def _rate_limited(order: Order) -> dict:
    """A 429 on placeorder came back. OpenAlgo passes a broker's own 429 through, so it is not
    proof on its own: the orderbook is read once, now, before the order is queued again. A
    throttled exit is not a failed one: it goes again without the exit spacing."""
    try:
        found = orderbook_find(order)
    except OrderbookUnreadable as e:
        # The reply came back: one good read later is enough (reconcile.py).
        why = f"rate limited (429), orderbook unreadable ({e}): not sent again before it shows the order absent"
        return {"status": Status.UNKNOWN, "absent_reads": reads_needed(), "last_error": why[:300]}
    if found is not None:
        oid = str(found["orderid"])
        return {"status": Status.ACCEPTED, "broker_orderid": oid, "absent_reads": 0, "last_error": "429, yet placed"}
    allowed = attempts_allowed(order)
    why = f"rate limited (429), not in the orderbook (attempt {order.attempts} of {allowed})"
    if order.attempts < allowed:
        return {"status": Status.PENDING, "last_error": f"{why}: queued again"}
    if order.reduce_only:  # its last attempt: reconcile hands the exit to a human after one more read
        return {"status": Status.UNKNOWN, "absent_reads": reads_needed(), "last_error": why}
    return {"status": Status.REJECTED, "last_error": why}


def exit_attempt_failed(order: Order, *, why: str, now: dt.datetime | None = None) -> None:
    """An exit's attempt is known not to be placed (the broker rejected it after accepting it):
    not the end of it. It waits, unknown, for the orderbook read that confirms it absent and for
    its spacing, then goes again, or needs attention after the last attempt (reconcile.py).
    Only an attempt with nothing filled: what did fill stays booked and the order final."""
    now = now or timezone.now()
    due = (order.sent_at or now) + exit_spacing()
    n, allowed = order.attempts, attempts_allowed(order)
    nxt = f"next attempt after {exit_spacing().total_seconds():g} s" if n < allowed else "last attempt"
    dead = [*order.dead_attempts, order.broker_orderid] if order.broker_orderid else order.dead_attempts
    Order.objects.filter(pk=order.pk, status=order.status, filled_quantity=0).update(
        status=Status.UNKNOWN,
        broker_orderid=None,  # the next attempt gets its own; this one is never adopted back
        dead_attempts=dead,
        absent_reads=reads_needed(),  # the broker's own word: one read confirms it
        last_error=f"exit attempt {n} of {allowed} not placed: {why}; {nxt}"[:300],
    )
    enqueue.reconcile_later(order.pk, countdown=max((due - now).total_seconds(), 0.1))
