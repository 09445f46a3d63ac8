"""Orders that end without the broker telling us how: an exit handed to a human, and orders the
broker's day rollover left behind (its books hold today's orders only).

An order sent before the current trading day began (03:00 IST, core.calendar) can no longer be
found in the broker's books: its absence from today's orderbook proves nothing, and an identical
row there is someone else's. Such an order is never sent again and never adopted; it is settled
with what we know — the fills booked so far, the rest expired with the day — and an exit in that
state needs a human, since whether it closed the position cannot be read any more.
"""

from __future__ import annotations

import datetime as dt

from django.db import transaction

from accounts.choices import AlertKind, AlertLevel, AuditAction
from accounts.services import account_reduce, alert_raise, audit_record
from core.calendar import trading_day_start

from .. import events
from ..models import Order
from .common import Status

EXIT_ATTENTION_REASON = "an exit could not be placed"
EXPIRED_AT_ROLLOVER = "expired at rollover"
UNKNOWN_AT_ROLLOVER = "unknown at rollover"


def exit_needs_attention(
    order: Order, why: str, *, statuses: tuple[str, ...] = (Status.UNKNOWN, Status.SENDING)
) -> bool:
    """The exit is given up: a human must close the position. The account stops taking entries
    (REDUCING, unless already halted), and the audit row and the alert are written with it.
    False when the order moved out of `statuses` meanwhile (settled by someone else)."""
    account = order.account
    message = f"{order.action} {order.quantity} {order.symbol} ({order.exchange}) on {account.name}: {why}"[:300]
    with transaction.atomic():
        if not Order.objects.filter(pk=order.pk, status__in=statuses).update(
            status=Status.ATTENTION, last_error=why[:300]
        ):
            return False
        account_reduce(account=account, reason=EXIT_ATTENTION_REASON, message=f"Reducing only: {message}")
        details = {"order_id": order.pk, "symbol": order.symbol, "exchange": order.exchange, "attempts": order.attempts}
        audit_record(action=AuditAction.EXIT_NEEDS_ATTENTION, account=account, message=message, details=details)
        alert_raise(
            kind=AlertKind.EXIT_NEEDS_ATTENTION,
            level=AlertLevel.CRITICAL,
            account=account,
            message=message,
            details=details,
        )
    return True


def sent_before_today(order: Order, now: dt.datetime) -> bool:
    """The order went to the broker before its current day began: today's books cannot show it."""
    sent = order.sent_at or order.created_at
    return sent is not None and sent < trading_day_start(now)


def settle_at_rollover(order: Order, *, why: str, broker_status: str) -> Order:
    """End an order of a previous day with what we know (compare-and-set from the status it was
    read in): the fills booked so far stay, the rest expired with the day; an exit needs a human."""
    stale = f"{why}; the broker's books hold today's orders only: not sent again"
    if order.reduce_only and order.filled_quantity < order.quantity:
        exit_needs_attention(order, stale, statuses=(order.status,))
    else:
        done = order.filled_quantity >= order.quantity
        Order.objects.filter(pk=order.pk, status=order.status, filled_quantity=order.filled_quantity).update(
            status=Status.COMPLETE if done else Status.CANCELLED,
            broker_status=broker_status[:30],
            doubtful_reads=0,
            poll_after=None,
            last_error=stale[:300],
        )
    order.refresh_from_db()
    events.order_changed(order)
    return order


def queued_again_for_approval(order: Order) -> None:
    """OpenAlgo queued this attempt for approval (semi-auto mode, learnt only now) and an earlier
    attempt of the order was sent too: if that one's reply was lost, it may be queued as well,
    and approving both places the order twice (an exit would flip the position). Nothing can
    withdraw it through the API (semi-auto refuses cancels), so a human is told: an exit needs
    attention, an entry raises a critical alert."""
    why = (
        f"queued for approval at OpenAlgo (attempt {order.attempts}); an earlier attempt may be queued there "
        "too: approve one of them at most"
    )
    if order.reduce_only:
        exit_needs_attention(order, why, statuses=(Status.UNKNOWN,))
        return
    message = f"{order.action} {order.quantity} {order.symbol} ({order.exchange}) on {order.account.name}: {why}"
    alert_raise(
        kind=AlertKind.SEMI_AUTO,
        level=AlertLevel.CRITICAL,
        account=order.account,
        message=message[:300],
        details={"order_id": order.pk, "attempts": order.attempts},
    )
