"""A mirrored order as one unit: its batch's orders retried, cancelled or modified together, each
account's outcome told back; and "close everything" followed to its end.

Retry re-issues only what a batch left undone on one account, exactly once: the new batch's
client token names the batch and the account, so a double click (or a second page) gets the same
retry back instead of a second order. Group cancel and modify act order by order through the
single-order services (one throttle token each, I7), so each account's outcome is the broker's
own answer, read back, never assumed.
"""

from __future__ import annotations

import uuid
from decimal import Decimal

from django.contrib.auth import get_user_model
from django.core.cache import cache

from accounts.choices import AuditAction
from accounts.selectors import account_get_by_id
from accounts.services import audit_record

from .. import events, presenters, selectors
from ..models import Order, OrderBatch
from . import enqueue
from .actions import account_close_all, order_cancel, order_modify
from .common import Leg, OrderRefused, Status, audit_order
from .create import orders_create

RETRY_TOKEN = "retry:b{batch}:a{account}"  # nosec B105 # the idempotency key's template, not a password


def batch_retry(*, user, batch_id: int, account_id: int) -> OrderBatch:
    """Re-issue what batch `batch_id` left undone on one account — an exit still open, an entry
    rejected or never placed — as a new batch, exactly once (the second call returns the first's
    batch, marked `repeat`). Refused while any of the account's orders still moves, or may still
    be working at the broker (selectors.retry_refusal): its outcome is not known, and an order is
    never sent again on a guess."""
    token = RETRY_TOKEN.format(batch=batch_id, account=account_id)
    done = OrderBatch.objects.filter(user=user, client_token=token).first()
    if done is not None:
        done.repeat = True
        return done
    batch = OrderBatch.objects.get(pk=batch_id)
    entry = next((a for a in selectors.batch_outcome(batch_id=batch_id) if a["account_id"] == account_id), None)
    if entry is None:
        raise OrderRefused(f"{selectors.group_id(batch_id)} has no order on that account")
    if why := selectors.retry_refusal(entry):
        raise OrderRefused(why)
    legs = [
        Leg(
            leg["symbol"],
            leg["exchange"],
            leg["action"],
            leg["left"],
            leg["order"].pricetype,
            leg["order"].product,
            leg["order"].price,
            leg["order"].trigger_price,
            reduce_only=leg["exit"],
        )
        for leg in entry["legs"]
        if selectors.leg_retryable(leg)
    ]
    if not legs:
        raise OrderRefused(f"{entry['account']}: nothing of {selectors.group_id(batch_id)} is left to retry")
    account = account_get_by_id(pk=account_id)
    return orders_create(
        user=user,
        accounts=[account],
        legs=legs,
        kind=batch.kind,
        note=f"retry of {selectors.group_id(batch_id)}",
        client_token=token,
    )


def _outcome(order: Order, ok: bool | None, text: str) -> dict:
    return {"order": order.pk, "account": order.account.name, "symbol": order.symbol, "ok": ok, "text": text}


def batch_cancel_all(*, batch_id: int, user=None) -> list[dict]:
    """Cancel every order of the batch still working: queued ones here (a compare-and-set, so a
    worker claiming it at the same instant either sends it or finds it cancelled, never both),
    those at the broker there. One outcome per order, in account order. An order being sent, or
    whose send outcome is unknown, may be live at the broker with no id to cancel it by: it is
    named as not cancelled (never left out, as if nothing were working)."""
    out = []
    unsettled = Order.objects.filter(batch_id=batch_id, status__in=[Status.SENDING, Status.UNKNOWN])
    for o in unsettled.select_related("account").order_by("account__name", "pk"):
        out.append(
            _outcome(o, False, "outcome unknown: not cancelled (being read from the broker); cancel it once it shows")
        )
    for o in selectors.batch_live_orders(batch_id=batch_id):
        if o.status == Status.PENDING:
            why = "cancelled before it was sent"
            if Order.objects.filter(pk=o.pk, status=Status.PENDING).update(status=Status.CANCELLED, last_error=why):
                o.status, o.last_error = Status.CANCELLED, why
                events.order_changed(o)
                audit_order(AuditAction.ORDER_CANCEL, o, "cancel: cancelled before it was sent", user=user)
                out.append(_outcome(o, True, "cancelled before it was sent ✓"))
                continue
            o.refresh_from_db()
            if o.status not in selectors.LIVE_STATUSES:
                out.append(_outcome(o, False, f"not cancelled: {o.get_status_display().lower()} meanwhile"))
                continue
        try:
            after = order_cancel(order_id=o.pk, user=user)
        except OrderRefused as e:
            out.append(_outcome(o, False, str(e)))
            continue
        if after.status == Status.CANCELLED:
            text = "cancelled ✓" if not after.filled_quantity else f"cancelled, {after.filled_quantity} filled before ✓"
            out.append(_outcome(after, True, text))
        elif after.status == Status.COMPLETE:
            out.append(_outcome(after, False, "filled before the cancel arrived"))
        else:
            why = f": {after.last_error}" if after.last_error else ""
            out.append(_outcome(after, False, f"still {after.get_status_display().lower()}{why}"))
    return out


def batch_modify_all(
    *, batch_id: int, pricetype: str, price: Decimal, trigger_price: Decimal, quantity: int | None = None, user=None
) -> list[dict]:
    """New terms for every order of the batch working at the broker. `quantity` (optional) is
    each order's new quantity; a split order's children keep theirs (they differ by design).
    One outcome per order: modified, refused with the broker's reason, or unknown until read.

    A quantity is in each account's own units, and the batch's orders of one size in lots differ
    where the brokers count differently (Zerodha's MCX contract vs another broker's 100 units): a
    quantity for orders whose quantities differ would mean a different size on each, so it is
    refused as a whole (OrderRefused), as orders_create refuses units there."""
    live = selectors.batch_live_orders(batch_id=batch_id)
    if quantity:
        sizes = sorted({(o.account.name, o.quantity) for o in live if o.status != Status.PENDING and not o.parent_id})
        if len({q for _, q in sizes}) > 1:
            each = ", ".join(f"{name}: {q}" for name, q in sizes)
            raise OrderRefused(
                f"the orders' quantities differ ({each}): one new quantity would be a different size on each "
                "account. Change the price or type for all, and each quantity on its own order."
            )
    out = []
    for o in live:
        if o.status == Status.PENDING:
            out.append(_outcome(o, False, "not sent yet: not modified (cancel it, or modify it once it is open)"))
            continue
        if quantity and o.parent_id and quantity != o.quantity:
            out.append(_outcome(o, False, "part of a split order: its quantity is changed on its own, not modified"))
            continue
        try:
            after = order_modify(
                order_id=o.pk,
                pricetype=pricetype,
                quantity=quantity or o.quantity,
                price=price,
                trigger_price=trigger_price,
                user=user,
            )
        except OrderRefused as e:
            out.append(_outcome(o, False, str(e)))
            continue
        if after.last_error:
            out.append(_outcome(after, False, after.last_error))
        else:
            out.append(_outcome(after, True, f"modified: {after.quantity} {presenters.order_terms(after)} ✓"))
    return out


# ------------------------------------------------------------------ close everything, followed
# A close-out runs on a worker; its ticket (Redis, shared by every process) tells the page how it
# ended: the exit batch it made, "already flat", or why it was refused.
CLOSE_TICKET = "close-ticket:{}"
CLOSE_TICKET_FOR = "close-ticket-for:{user}:{token}"
TICKET_TTL = 6 * 3600


def account_close_start(*, user, account_id: int, request=None, client_token: str = "") -> tuple[str, bool]:
    """Audit the trader's "close everything" and run it on a worker, returning the ticket that
    follows it (and False when this page's one-time token already started one: its ticket)."""
    account = account_get_by_id(pk=account_id)
    ticket = uuid.uuid4().hex
    if client_token:
        key = CLOSE_TICKET_FOR.format(user=getattr(user, "pk", None), token=client_token)
        if not cache.add(key, ticket, TICKET_TTL):
            return cache.get(key) or ticket, False
    cache.set(CLOSE_TICKET.format(ticket), {"account_id": account.pk, "state": "running"}, TICKET_TTL)
    audit_record(
        action=AuditAction.ACCOUNT_CLOSED,
        user=user,
        account=account,
        request=request,
        message="close everything requested",
    )
    enqueue.close_all_tracked_on_commit(account.pk, user.pk if user else None, ticket)
    return ticket, True


def account_close_tracked(*, account_id: int, user_id: int | None, ticket: str) -> OrderBatch | None:
    """The worker's side: close the account (joining a close-out already running) and record on
    the ticket how it ended. A refusal is audited too: nobody may be watching the page."""
    user = get_user_model().objects.filter(pk=user_id).first()
    key = CLOSE_TICKET.format(ticket)
    try:
        batch = account_close_all(user=user, account_id=account_id)
    except OrderRefused as e:
        audit_record(user=user, action=AuditAction.CLOSE_REFUSED, message=str(e))
        cache.set(key, {"account_id": account_id, "state": "refused", "message": str(e)}, TICKET_TTL)
        return None
    if batch is None:
        cache.set(key, {"account_id": account_id, "state": "flat"}, TICKET_TTL)
        account = account_get_by_id(pk=account_id)
        audit_record(user=user, account=account, action=AuditAction.ACCOUNT_CLOSED, message="close everything: flat")
    else:
        cache.set(key, {"account_id": account_id, "state": "batch", "batch": batch.pk}, TICKET_TTL)
    return batch


def close_ticket(ticket: str) -> dict | None:
    """How a close-out started with `account_close_start` stands: running, batch, flat or refused."""
    return cache.get(CLOSE_TICKET.format(ticket)) if ticket.isalnum() else None
