"""Sending pending orders exactly once (invariants I2, I3, I7, I8).

`orders_send_account` claims each pending order with a compare-and-set update (pending →
sending, `claimed_at` stamped, the attempt counted), waits for what it must (an exit's lock, the
OpenAlgo server's throttle), and only then stamps `sent_at` with a second compare-and-set on its
own claim, right before the request leaves: a claim the sweeper took back meanwhile is not sent
(`orders_sweep` tells "claimed, never sent" from "sent" by `sent_at`). The outcome is classified
(openalgo_client.rest.Outcome). An UNKNOWN outcome is never re-sent blindly: it goes to
`reconcile.order_reconcile` once any request still in flight must have ended.

Within one batch and account, SELL entries go only once every BUY has an outcome (a hedge before
its short), whichever task (a first one, a re-queued duplicate) sends them.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING

from django.conf import settings
from django.db.models import F, Q
from django.utils import timezone

from accounts import crypto
from accounts.choices import OrderMode, TradingState
from accounts.selectors import account_get_by_id
from accounts.services import account_client, account_mark_auto, account_mark_semi_auto
from openalgo_client.rest import Reason

from .. import brokerbooks, events, throttle
from ..locks import exit_lock
from ..models import Order, Position
from . import bookwatch, enqueue
from .attention import queued_again_for_approval
from .books import account_reconcile_if_stale, positions_held
from .common import LIVE, Status, audit_outcome
from .fills import order_refresh
from .outcome import record_outcome

if TYPE_CHECKING:
    from accounts.models import TradingAccount


# A worker sends what it claimed within this many seconds or gives the claim back (the exit
# lock's wait, the gate's reads of the broker and the throttle all fit in it). The sweeper takes
# back claims older than this plus the margin (clock skew between hosts): by then their
# worker can no longer send them. The exit lock outlives a claim, so an exit's position check
# and its send stay under one lock.
def claim_seconds() -> float:
    return settings.ORDER_CLAIM_SECONDS


def claim_margin() -> float:
    return settings.ORDER_CLAIM_MARGIN


# What one send run did with an order: sent it, held it (pending again: look again in a second),
# or is done with it here (rejected, left to the sweeper, or taken over by another worker).
# GO: the exit gate lets it through to the throttle and the send.
SENT, HELD, DONE, GO = "sent", "held", "done", "go"


def _claim(order: Order) -> bool:
    """pending → sending, exactly once whoever tries (a redelivered task finds nothing to claim).
    The attempt number (never reused: a claim the sweeper takes back keeps its count) and the
    claim time identify this claim in every later write."""
    now = timezone.now()
    claimed = Order.objects.filter(pk=order.pk, status=Status.PENDING, attempts=order.attempts).update(
        status=Status.SENDING, attempts=order.attempts + 1, claimed_at=now, sent_at=None
    )
    if claimed:
        order.status, order.attempts, order.claimed_at, order.sent_at = Status.SENDING, order.attempts + 1, now, None
    return bool(claimed)


def _mine(order: Order):
    """The order, if it is still this worker's unsent claim."""
    return Order.objects.filter(
        pk=order.pk, status=Status.SENDING, attempts=order.attempts, claimed_at=order.claimed_at, sent_at__isnull=True
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
                audit_outcome(order)
        pending = [o for o in pending if o.reduce_only]
    again = False  # something was held for a moment: look again in a second
    for order in pending:
        order.account = account  # already loaded: no query per order for its name
        if order.action == "SELL" and _buys_without_outcome(order):
            # The batch's BUYs go first: for entries, a hedge ahead of its short (another task, a
            # re-queued duplicate of this one, may still be sending it); for exits, shorts bought
            # back before longs are sold, even while a BUY-to-close is held.
            why = "waiting for this batch's BUY legs to be accepted first"
            Order.objects.filter(pk=order.pk, status=Status.PENDING).exclude(last_error=why).update(last_error=why)
            again = True
            continue
        if not _claim(order):
            continue
        if order.reduce_only:
            # The position check and the send happen under one lock per instrument, so two
            # exits racing on two workers cannot both see the same open quantity.
            with exit_lock(order, ttl=claim_seconds() + settings.OPENALGO_TIMEOUT + 5) as held:
                if not held:
                    outcome = _give_back(order, "another exit for this position is being sent: waiting")
                else:
                    outcome = _reduce_only_gate(client, order)
                    if outcome == GO:
                        outcome = _send(client, account, order)
        else:
            outcome = _send(client, account, order)
        if outcome == SENT:
            sent.append(order)
        again = again or outcome == HELD
    if again:
        enqueue.send_later(account.pk, batch_id, countdown=1)
    return sent


def _buys_without_outcome(order: Order) -> bool:
    """Whether a BUY of the order's batch (same account) has not been accepted or settled yet."""
    if order.batch_id is None:
        return False
    return Order.objects.filter(
        batch_id=order.batch_id,
        account_id=order.account_id,
        action="BUY",
        status__in=[Status.PENDING, Status.SENDING, Status.UNKNOWN],
    ).exists()


def _entries_allowed(account: TradingAccount) -> bool:
    """I8: an account takes new entries only while ACTIVE and only once its positions have been
    read from the broker recently and since the platform last started (see
    books.account_reconcile_if_stale)."""
    fresh = account_reconcile_if_stale(account=account)
    if fresh is not None:  # it read the broker just now, which may have halted the account
        account.refresh_from_db(fields=["trading_state", "halt_reason"])
    return account.trading_state == TradingState.ACTIVE


def _send(client, account: TradingAccount, order: Order) -> str:
    deadline = order.claimed_at + dt.timedelta(seconds=claim_seconds())
    left = (deadline - timezone.now()).total_seconds()
    # I7: one bucket per OpenAlgo server, whichever of its accounts sends.
    if left <= 0 or not throttle.acquire(account.host_url, timeout=left):
        return _give_back(order, "throttled: OpenAlgo's order limit is in use, sending shortly")
    now = timezone.now()
    if now >= deadline:
        return _give_back(order, "claim expired before sending: sending shortly")
    # The last compare-and-set before the request leaves: a claim taken back by the sweeper
    # (this worker looked dead) is someone else's to send now.
    if not _mine(order).update(sent_at=now):
        order.refresh_from_db()
        return DONE
    order.sent_at = now
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
    if res.reason is Reason.RATE_LIMITED:
        # OpenAlgo's window is full (orders placed from elsewhere count too): every worker
        # sending to this server backs off for a second.
        throttle.hold(account.host_url, 1.0)
    record_outcome(order, res)
    # The placement's reply is the only place OpenAlgo's order mode shows (no read reveals it).
    if res.shows_semi_auto:
        account_mark_semi_auto(account=account, evidence=f"order {order.pk}: {res.message}")
        if res.reason is Reason.PENDING_APPROVAL and order.attempts > 1:
            queued_again_for_approval(order)
    elif res.ok and account.order_mode != OrderMode.AUTO:
        account_mark_auto(account=account, evidence=f"order {order.pk} placed as {res.body.get('orderid')}")
    return SENT


def _give_back(order: Order, why: str) -> str:
    """sending → pending without having sent anything (the attempt is not counted)."""
    _mine(order).update(status=Status.PENDING, attempts=F("attempts") - 1, claimed_at=None, last_error=why[:300])
    order.refresh_from_db()
    events.order_changed(order)
    return HELD


def _reduce_only_gate(client, order: Order) -> str:
    """I3: an exit never exceeds the position, nor flips it. Returns GO when the exit may go
    (perhaps trimmed); otherwise it was held (HELD, or DONE: left to the sweeper) or denied
    locally (DONE).

    Two views of the position are compared (brokerbooks.exit_check): the broker's positionbook,
    and our own fills. Our view is exact as far as our own orders go (an order's fill and its
    position change are booked together), whatever we have or have not read yet; the broker's
    lags by the fills its positionbook does not show yet, and by those we have not read (which
    we subtract as still in flight). When they disagree, the instrument's live orders are read
    from the broker FIRST and the positionbook after them, so only a lagging positionbook can
    still make them differ; the exit then waits for them to agree, for a short window."""
    key = {"account_id": order.account_id, "exchange": order.exchange, "symbol": order.symbol, "product": order.product}
    # Every order of ours that moves the position the exit's way counts, exit or not: a plain SELL
    # in flight on a long closes it as surely as an exit does (exit_allowance keeps only those).
    same = Order.objects.filter(**key).exclude(pk=order.pk)
    # An earlier order the exit's way whose request may be at the broker right now, or whose
    # outcome is unknown: what it did is not in either book yet. (One merely claimed, if it is an
    # exit, waits for this lock itself.)
    if (
        same.filter(action=order.action)
        .filter(Q(status=Status.SENDING, sent_at__isnull=False) | Q(status=Status.UNKNOWN))
        .exists()
    ):
        return _give_back(order, "waiting for an earlier order's outcome before checking the position")
    try:
        check = _exit_check(client, order, same, key)
        live = list(
            Order.objects.filter(status__in=LIVE, broker_orderid__isnull=False, **key)
            .exclude(pk=order.pk)
            .values_list("pk", flat=True)
        )
        if check.hold and live:
            for pk in live:
                order_refresh(order_id=pk)  # fills booked into our position
            check = _exit_check(client, order, same, key)
    except brokerbooks.BookUnreadable as e:
        # Fail closed: an unreadable broker is "unknown", never "flat" and never "still open"
        # (an empty book while we hold the position included: brokerbooks.BookUnknown).
        # Not re-queued at once: the sweeper looks again in a few seconds.
        bookwatch.read_bad(order.account, bookwatch.POSITIONS, str(e))
        _give_back(order, f"broker position unknown ({e}): exit held")
        return DONE
    views = f"the broker allows {check.broker}, our fills {check.ours}"
    if check.hold:
        return _give_back(order, f"reduce-only: the broker's positions and our fills disagree ({views}): waiting")
    if check.send <= 0:
        why = "reduce-only: the broker shows nothing left to close (not sent)"
        if check.ours is not None and check.ours != check.broker:
            why = f"reduce-only: nothing left to close ({views}; not sent)"
        if _mine(order).update(status=Status.REJECTED, attempts=F("attempts") - 1, last_error=why):
            order.refresh_from_db()
            events.order_changed(order)
            audit_outcome(order)
        return DONE
    if check.send < order.quantity:
        note = f"reduce-only: trimmed from {order.quantity} to the open {check.send}"
        if check.ours is not None and check.ours != check.broker:
            note += f" ({views})"
        if not _mine(order).update(quantity=check.send, note=note[:200]):
            return DONE  # no longer this worker's claim: not sent from here
        order.quantity = check.send
    return GO


def _exit_check(client, order: Order, same, key: dict) -> brokerbooks.ExitCheck:
    """Both views of the position now (the positionbook is read here; BookUnreadable passes up)."""
    book = brokerbooks.from_result(client.positionbook(), brokerbooks.parse_positionbook)
    brokerbooks.check_positionbook(book, positions_held(order.account_id))
    bookwatch.read_good(order.account, bookwatch.POSITIONS)
    pos = book.get((order.exchange, order.symbol, order.product))
    ours = Position.objects.filter(**key).values_list("quantity", flat=True).first()
    live = same.filter(status__in=LIVE).values_list("action", "quantity", "filled_quantity")
    age = timezone.now() - order.created_at
    return brokerbooks.exit_check(
        order.action,
        order.quantity,
        pos.quantity if pos else None,
        ours,
        [(a, q - f) for a, q, f in live],
        settled=age >= dt.timedelta(seconds=settings.EXIT_BOOKS_AGREE_SECONDS),
    )
