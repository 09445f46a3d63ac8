"""What a placeorder reply means for the order (invariant I2), recorded with a compare-and-set
from "sending" (a sweeper that moved the order meanwhile wins).

* accepted, with an orderid → accepted (polled for fills from now on);
* queued for approval at OpenAlgo (semi-auto) → unknown, "awaiting approval": found in the
  orderbook once a human approves it, never sent again;
* the connection was refused (nothing left) → an entry is queued again (bounded);
* a 429 (OpenAlgo passes a broker's own 429 through), or any refusal of an exit → unknown, but
  with the reply in hand: one orderbook read without the order proves it absent (reconcile.py);
  an exit then goes again after its spacing;
* a definitive refusal of an entry (a 4xx, or status "error") → rejected;
* anything else (timeout, broken connection, 5xx, no status, success without an orderid) →
  unknown: absence needs several orderbook reads past the window before it is sent again.
"""

from __future__ import annotations

import datetime as dt

from django.conf import settings
from django.utils import timezone

from openalgo_client.rest import Outcome, Reason, Result

from .. import events
from ..models import Order
from . import enqueue
from .common import MAX_ATTEMPTS, Status, grace

# Set as broker_status on an order OpenAlgo queued for a human's approval (semi-auto mode): it is
# looked for in the orderbook like any unknown order, and never sent again.
AWAITING_APPROVAL = "awaiting approval"


def reads_needed() -> int:
    """Orderbook reads without an order, past the window, that prove it absent (reconcile.py)."""
    return max(1, settings.ORDER_ABSENT_READS)


def absence_window() -> dt.timedelta:
    return dt.timedelta(seconds=settings.ORDER_ABSENCE_WINDOW)


def exit_spacing() -> dt.timedelta:
    return dt.timedelta(seconds=settings.EXIT_RETRY_SECONDS)


def attempts_allowed(order: Order) -> int:
    return settings.EXIT_MAX_ATTEMPTS if order.reduce_only else MAX_ATTEMPTS


def record_outcome(order: Order, res: Result) -> None:
    upd: dict = {}
    countdown = grace().total_seconds()  # when to look for an unknown order in the orderbook
    oid = str(res.body.get("orderid") or "")
    if res.outcome is Outcome.ACCEPTED and oid:
        upd = {"status": Status.ACCEPTED, "broker_orderid": oid, "absent_reads": 0, "last_error": ""}
    elif res.reason is Reason.PENDING_APPROVAL:
        upd = {"status": Status.UNKNOWN, "broker_status": AWAITING_APPROVAL, "last_error": res.message[:300]}
    elif res.reason is Reason.UNREACHABLE and not order.reduce_only:
        # Nothing reached the broker: queue it again (bounded), never counted as a broker reject.
        upd = {
            "status": Status.PENDING if order.attempts < MAX_ATTEMPTS else Status.REJECTED,
            "last_error": f"{res.message} (attempt {order.attempts} of {MAX_ATTEMPTS})"[:300],
        }
    elif res.reason in (Reason.RATE_LIMITED, Reason.UNREACHABLE) or (
        res.outcome is Outcome.REJECTED and order.reduce_only
    ):
        # The reply came back (or nothing left): nothing is in flight, one read settles it.
        what = "rate limited (429)" if res.reason is Reason.RATE_LIMITED else res.message or res.reason
        upd = {
            "status": Status.UNKNOWN,
            "absent_reads": reads_needed(),
            "last_error": f"{what}: not sent again before the orderbook shows it absent"[:300],
        }
        # A growing backoff for entries; an exit's attempts are spaced (reconcile holds it until due).
        countdown = exit_spacing().total_seconds() if order.reduce_only else float(order.attempts)
    elif res.outcome is Outcome.REJECTED:
        upd = {"status": Status.REJECTED, "last_error": res.message[:300]}
    else:  # includes an "accepted" that names no order: only the orderbook can say which it is
        upd = {"status": Status.UNKNOWN, "absent_reads": 0, "last_error": f"{res.reason}: {res.message}"[:300]}
    if Order.objects.filter(pk=order.pk, status=Status.SENDING).update(**upd):
        for field, value in upd.items():
            setattr(order, field, value)
    else:
        order.refresh_from_db()  # someone else moved it meanwhile (a sweeper): show what is stored
    events.order_changed(order)
    if order.status == Status.UNKNOWN:
        enqueue.reconcile_later(order.pk, countdown=countdown)
    elif order.status == Status.PENDING:
        enqueue.send_later(order.account_id, order.batch_id, countdown=1)


def exit_attempt_failed(order: Order, *, why: str, now: dt.datetime | None = None) -> None:
    """An exit's attempt is known not to be placed (the broker rejected it after accepting it):
    not the end of it. It waits, unknown, for the orderbook read that confirms it absent and for
    its spacing, then goes again, or needs attention after the last attempt (reconcile.py).
    Only an attempt with nothing filled: what did fill stays booked and the order final."""
    now = now or timezone.now()
    due = (order.sent_at or now) + exit_spacing()
    n, allowed = order.attempts, attempts_allowed(order)
    nxt = f"next attempt after {exit_spacing().total_seconds():g} s" if n < allowed else "last attempt"
    Order.objects.filter(pk=order.pk, status=order.status, filled_quantity=0).update(
        status=Status.UNKNOWN,
        broker_orderid=None,  # the next attempt gets its own; this one stays in last_error
        absent_reads=reads_needed(),  # the broker's own word: one read confirms it
        last_error=f"exit attempt {n} of {allowed} not placed: {why}; {nxt}"[:300],
    )
    enqueue.reconcile_later(order.pk, countdown=max((due - now).total_seconds(), 0.1))
