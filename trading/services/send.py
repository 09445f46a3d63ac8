"""Sending pending orders exactly once (invariants I2, I3, I7, I8).

`orders_send_account` claims each pending order with a compare-and-set update (pending →
sending), sends it, and classifies the outcome (openalgo_client.rest.Outcome). An UNKNOWN outcome
is never re-sent blindly: it goes to `reconcile.order_reconcile` once any request still in flight
must have ended.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.db.models import F
from django.utils import timezone

from accounts import crypto
from accounts.choices import TradingState
from accounts.selectors import account_get_by_id
from accounts.services import account_client

from .. import brokerbooks, events, throttle
from ..locks import exit_lock
from ..models import Order
from .books import account_reconcile_if_stale
from .common import Status
from .outcome import record_outcome

if TYPE_CHECKING:
    from accounts.models import TradingAccount


def _claim(order: Order) -> bool:
    """pending → sending, exactly once whoever tries (a redelivered task finds nothing to claim)."""
    return bool(
        Order.objects.filter(pk=order.pk, status=Status.PENDING).update(
            status=Status.SENDING, attempts=F("attempts") + 1, sent_at=timezone.now()
        )
    )


def orders_send_account(*, account_id: int, batch_id: int | None = None) -> list[Order]:
    # The latest reconciliation rides along (one query): entries need it, see _entries_allowed.
    account = account_get_by_id(pk=account_id, related=("reconciliation",))
    qs = Order.objects.filter(account=account, status=Status.PENDING)
    if batch_id is not None:
        qs = qs.filter(batch_id=batch_id)
    sent = []
    try:
        client = account_client(account)
    except crypto.KeyUnreadable:
        qs.update(status=Status.REJECTED, last_error="API key unreadable: account halted")
        return []
    pending = sorted(qs, key=lambda o: (o.action != "BUY", o.pk))
    if any(not o.reduce_only for o in pending) and not _entries_allowed(account):
        # Halted or reducing since the order was queued, or the broker's positions could not be
        # read before this first entry: new exposure is refused here, exits still go out.
        why = f"not sent: {account.name} is {account.get_trading_state_display().lower()}"
        if account.halt_reason:
            why += f" ({account.halt_reason})"
        for order in [o for o in pending if not o.reduce_only]:
            if Order.objects.filter(pk=order.pk, status=Status.PENDING).update(
                status=Status.REJECTED, last_error=why[:300]
            ):
                order.status, order.last_error, order.account = Status.REJECTED, why[:300], account
                events.order_changed(order)
        pending = [o for o in pending if o.reduce_only]
    for order in pending:
        order.account = account  # already loaded: no query per order for its name
        if not _claim(order):
            continue
        if order.reduce_only:
            # The position check and the send happen under one lock per instrument, so two
            # exits racing on two workers cannot both see the same open quantity.
            with exit_lock(order) as held:
                if not held:
                    _unclaim(order, "another exit for this position is being sent: waiting")
                elif _reduce_only_gate(client, order):
                    _send(client, account, order)
                    sent.append(order)
            continue
        _send(client, account, order)
        sent.append(order)
    return sent


def _entries_allowed(account: TradingAccount) -> bool:
    """I8: an account takes new entries only while ACTIVE and only once its positions have been
    read from the broker recently (after a restart, the first entry waits for that read)."""
    fresh = account_reconcile_if_stale(account=account)
    if fresh is not None:  # it read the broker just now, which may have halted the account
        account.refresh_from_db(fields=["trading_state", "halt_reason"])
    return account.trading_state == TradingState.ACTIVE


def _send(client, account: TradingAccount, order: Order) -> None:
    if not throttle.acquire(account.pk):
        _unclaim(order, "throttled")
        return
    res = client.placeorder(
        strategy=order.tag,
        symbol=order.symbol,
        exchange=order.exchange,
        action=order.action,
        quantity=order.quantity,
        pricetype=order.pricetype,
        product=order.product,
        price=order.price,
        trigger_price=order.trigger_price,
    )
    record_outcome(order, res)


def _unclaim(order: Order, why: str) -> None:
    """sending → pending without having sent anything (the attempt is not counted)."""
    Order.objects.filter(pk=order.pk, status=Status.SENDING).update(
        status=Status.PENDING, attempts=F("attempts") - 1, last_error=why[:300]
    )
    order.refresh_from_db()
    events.order_changed(order)


def _reduce_only_gate(client, order: Order) -> bool:
    """I3: an exit never exceeds the broker's current position, nor flips it. Returns whether
    to send; otherwise the order was held (pending), trimmed-and-sent, or denied locally."""
    same = Order.objects.filter(
        account_id=order.account_id,
        exchange=order.exchange,
        symbol=order.symbol,
        product=order.product,
        reduce_only=True,
    ).exclude(pk=order.pk)
    if same.filter(status__in=[Status.SENDING, Status.UNKNOWN]).exists():
        _unclaim(order, "waiting for an earlier exit's outcome before checking the position")
        return False
    try:
        book = brokerbooks.from_result(client.positionbook(), brokerbooks.parse_positionbook)
    except brokerbooks.BookUnreadable as e:
        # Fail closed: an unreadable broker is "unknown", never "flat" and never "still open".
        _unclaim(order, f"broker position unknown ({e}): exit held")
        return False
    pos = book.get((order.exchange, order.symbol, order.product))
    in_flight = [
        (a, q - f)
        for a, q, f in same.filter(status__in=[Status.ACCEPTED, Status.OPEN]).values_list(
            "action", "quantity", "filled_quantity"
        )
    ]
    allowed = brokerbooks.exit_allowance(order.action, pos.quantity if pos else 0, in_flight)
    if allowed <= 0:
        Order.objects.filter(pk=order.pk, status=Status.SENDING).update(
            status=Status.REJECTED,
            attempts=F("attempts") - 1,
            last_error="reduce-only: the broker shows nothing left to close (not sent)",
        )
        order.refresh_from_db()
        events.order_changed(order)
        return False
    if allowed < order.quantity:
        Order.objects.filter(pk=order.pk).update(
            quantity=allowed, note=f"reduce-only: trimmed from {order.quantity} to the open {allowed}"
        )
        order.quantity = allowed
    return True
