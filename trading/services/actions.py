"""The trader's actions on what is already placed: modify, cancel, cancel everything, and close
a position or a whole account (reduce-only exits, trimmed at send time to what the broker holds)."""

from __future__ import annotations

import time
from decimal import Decimal

from django.contrib.auth import get_user_model
from django.core.cache import cache

from accounts.choices import AlertKind, AlertLevel, AuditAction, TradingState
from accounts.selectors import account_get_by_id
from accounts.services import account_mark_semi_auto, alert_raise, audit_record
from openalgo_client.orderstatus import Kind
from openalgo_client.rest import Outcome

from .. import brokerbooks, throttle
from ..locks import close_all_lock
from ..models import Order, OrderBatch, Position
from ..selectors import group_id
from . import bookwatch, enqueue
from .books import account_client_or_refuse, positions_held
from .common import LIVE, Leg, OrderRefused, Status, audit_order
from .create import batch_for_token, orders_create
from .fills import order_refresh

# How long a trader's cancel or modify waits for the OpenAlgo server's throttle before it is
# refused (a page is waiting); cancel-all runs on a worker and may wait longer.
ACTION_WAIT = 2.0
CANCEL_ALL_WAIT = 5.0


def _take_token(account, wait: float) -> None:
    """One request's worth of the OpenAlgo server's order limit (I7), or a refusal: nothing is
    sent past the throttle, cancels included (OpenAlgo counts them against the same limit)."""
    if not throttle.acquire(account.host_url, timeout=wait):
        raise OrderRefused(f"{account.name}: OpenAlgo is busy, try again")


def _live_order(order_id: int) -> Order:
    order = Order.objects.select_related("account").get(pk=order_id)
    if order.status not in LIVE or not order.broker_orderid:
        raise OrderRefused(f"order {order.pk} is {order.get_status_display().lower()}: nothing to change")
    return order


def _note_semi_auto(account, res) -> None:
    """A 403 "not allowed in Semi-Auto mode" proves the key is in semi-auto mode: the account says
    so (and later exits to it are refused up front) instead of reading it as a wrong key."""
    if res.shows_semi_auto:
        account_mark_semi_auto(account=account, evidence=res.message)


def order_cancel(*, order_id: int, user=None) -> Order:
    """Cancel one open order. Cancelling twice is harmless at the broker, so an unknown outcome
    is settled by reading the order's status, never by guessing. Audited with `user` and what
    the broker's status says after it."""
    order = _live_order(order_id)
    _take_token(order.account, ACTION_WAIT)
    res = account_client_or_refuse(order.account).cancelorder(orderid=order.broker_orderid, strategy=order.tag)
    _note_semi_auto(order.account, res)
    if not res.ok:
        Order.objects.filter(pk=order.pk).update(last_error=f"cancel: {res.message or res.reason}"[:300])
    # Filled before the cancel arrived, cancelled, or still open: the broker's status says which
    # (a "cancelled" after a cancel it accepted needs no confirming read).
    after = order_refresh(order_id=order.pk, expecting=Kind.CANCELLED if res.ok else None)
    said = "" if res.ok else f" (broker: {res.message or res.reason})"
    audit_order(AuditAction.ORDER_CANCEL, after, f"cancel: now {after.get_status_display().lower()}{said}", user=user)
    return after


def order_modify(
    *, order_id: int, pricetype: str, quantity: int, price: Decimal, trigger_price: Decimal, user=None
) -> Order:
    order = _live_order(order_id)
    account = order.account
    if account.trading_state != TradingState.ACTIVE and not order.reduce_only:
        raise OrderRefused(f"{account.name} is {account.get_trading_state_display().lower()}: modifying is refused")
    if quantity < max(order.filled_quantity, 1):
        raise OrderRefused(f"quantity cannot go below the {order.filled_quantity} already filled")
    if order.reduce_only and quantity > order.quantity:
        raise OrderRefused("an exit's quantity can only be reduced")
    if pricetype in ("LIMIT", "SL") and price <= 0:
        raise OrderRefused("a limit price is required for this order type")
    if pricetype in ("SL", "SL-M") and trigger_price <= 0:
        raise OrderRefused("a trigger price is required for stop orders")
    _take_token(account, ACTION_WAIT)
    res = account_client_or_refuse(account).modifyorder(
        orderid=order.broker_orderid,
        strategy=order.tag,
        symbol=order.symbol,
        exchange=order.exchange,
        action=order.action,
        product=order.product,
        pricetype=pricetype,
        quantity=quantity,
        price=price,
        trigger_price=trigger_price,
    )
    _note_semi_auto(account, res)
    if res.outcome is Outcome.ACCEPTED:
        Order.objects.filter(pk=order.pk).update(
            pricetype=pricetype, quantity=quantity, price=price, trigger_price=trigger_price, last_error=""
        )
    elif res.outcome is Outcome.REJECTED:
        Order.objects.filter(pk=order.pk).update(last_error=f"modify refused: {res.message}"[:300])
    else:
        # Modifying is idempotent (same values twice = same order), but we still do not guess:
        # the order keeps its old terms here until its status is read.
        Order.objects.filter(pk=order.pk).update(last_error=f"modify outcome unknown: {res.message}"[:300])
    asked = f"{quantity} {pricetype}" + (f" @ {price}" if price else "")
    asked += f" trg {trigger_price}" if trigger_price else ""
    audit_order(
        AuditAction.ORDER_MODIFY,
        order,
        f"modify to {asked}: {res.outcome.value.lower()}" + ("" if res.ok else f" ({res.message})"),
        user=user,
    )
    return order_refresh(order_id=order.pk)


def orders_cancel_all(*, account_id: int) -> dict:
    """Cancel every open order in one account (ours and any placed outside AlgoMirror)."""
    account = account_get_by_id(pk=account_id)
    _take_token(account, CANCEL_ALL_WAIT)
    res = account_client_or_refuse(account).cancelallorder(strategy="algomirror")
    _note_semi_auto(account, res)
    body = res.body if isinstance(res.body, dict) else {}
    named = {str(oid) for oid in body.get("canceled_orders") or []} if res.ok else set()
    live = Order.objects.filter(account=account, status__in=LIVE)
    for pk, oid in live.values_list("pk", "broker_orderid"):
        order_refresh(order_id=pk, expecting=Kind.CANCELLED if oid in named else None)
    cancelled = len(body.get("canceled_orders") or [])
    message = res.message or body.get("message", "")
    # Zerodha's cancel-all answers "Canceled 0 orders" when its own orderbook read failed: a
    # success that cancelled none of the orders we know are open is said so, not taken as done.
    still = live.count() if res.ok and not cancelled else 0
    if still:
        message = f"the broker cancelled none of our {still} open order(s) (its orderbook may be unreadable)"
    ok = res.ok and not still
    audit_record(
        action=AuditAction.CANCEL_ALL,
        account=account,
        message=f"cancel all: {'done' if ok else 'not done'}, {cancelled} cancelled" + (f": {message}" * bool(message)),
        details={"by": "system", "ok": ok, "cancelled": cancelled},
    )
    return {"ok": ok, "message": message, "cancelled": cancelled}


def account_cancel_all_request(*, user, account_id: int, request=None) -> None:
    """Audit the trader's "cancel all" on one account and run it on a worker (its outcome is
    audited there, by `orders_cancel_all`)."""
    account = account_get_by_id(pk=account_id)
    audit_record(
        action=AuditAction.CANCEL_ALL, user=user, account=account, request=request, message="cancel all requested"
    )
    enqueue.orders_cancel_all_request(account_id=account.pk)


def _exit_leg(exchange: str, symbol: str, product: str, quantity: int) -> Leg:
    return Leg(symbol, exchange, "SELL" if quantity > 0 else "BUY", abs(quantity), "MARKET", product, reduce_only=True)


def position_close(*, user, position_id: int, client_token: str = "") -> OrderBatch:
    """A reduce-only market exit for one of our positions (trimmed at send time to what the
    broker still holds). `client_token` as in `orders_create`: the same close posted twice is
    one exit, and the repeat is answered with it even once the position is flat."""
    if client_token and (done := batch_for_token(user, client_token)) is not None:
        return done
    pos = Position.objects.select_related("account").get(pk=position_id)
    if pos.quantity == 0:
        raise OrderRefused(f"{pos.symbol} is already flat")
    leg = _exit_leg(pos.exchange, pos.symbol, pos.product, pos.quantity)
    batch = orders_create(
        user=user,
        accounts=[pos.account],
        legs=[leg],
        kind=OrderBatch.Kind.EXIT,
        note="close",
        client_token=client_token,
    )
    if not batch.repeat:
        group = group_id(batch.pk)
        audit_record(
            action=AuditAction.POSITION_CLOSE,
            user=user,
            account=pos.account,
            group=group,
            message=f"{group}: close {pos.exchange}:{pos.symbol} {pos.product} ({pos.quantity} held): "
            f"{leg.action} {leg.quantity} at market, reduce-only",
            details={"batch": batch.pk, "position": pos.pk, "quantity": pos.quantity},
        )
    return batch


# A close-out's batch carries a token naming its account and the close-out before it: two runs
# that start from the same state derive the same token, so the database makes one batch of them
# even if the lock below was lost. The prefix is also how a running close-out is recognised.
CLOSE_ALL_TOKEN = "close-all:a{account}:after{previous}"  # nosec B105 # the idempotency key's template, not a password
# Orders that will still move on their own; an exit needing attention will not (a person must
# act), so a close-out stuck there does not stand in for a new one.
_RUNNING = [Status.PENDING, Status.SENDING, Status.ACCEPTED, Status.UNKNOWN, Status.OPEN]


def _close_alls(account_id: int):
    prefix = CLOSE_ALL_TOKEN.split("{previous}")[0].format(account=account_id)
    return OrderBatch.objects.filter(kind=OrderBatch.Kind.EXIT, client_token__startswith=prefix)


def _running_close(account_id: int) -> OrderBatch | None:
    batch = _close_alls(account_id).filter(orders__status__in=_RUNNING).order_by("-pk").first()
    if batch is not None:
        batch.repeat = True
    return batch


class CloseHeld(OrderRefused):
    """Close everything cannot see the broker's positions: unreadable, or unknown (a book that
    lacks positions we hold — an error some servers answer as an empty book). Nothing is sent;
    on a worker it runs again shortly (account_close_run), never "nothing to close"."""


# While held, close everything looks again this often, for at most this long (then a person must act).
CLOSE_HELD_RETRY = 5.0
CLOSE_HELD_LIMIT = 15 * 60.0


def account_close_all(*, user, account_id: int) -> OrderBatch | None:
    """Flatten one account: cancel its open orders, then exit every position the broker shows
    (short legs bought back first). Held when the broker's positions cannot be read (CloseHeld:
    nothing sent, a worker runs it again); when they read but lack positions we hold (unknown,
    never "nothing to close"), our own positions are exited, each held at the gate until listed.

    While a close-out of this account is still running (any of its orders not yet filled,
    cancelled, rejected or needing attention), a second one joins it: its batch is returned and
    nothing is cancelled or written (cancelling would kill the exits the first one placed). The
    trader's second click, a repeated task and a re-fired trigger are all that second one."""
    account = account_get_by_id(pk=account_id)
    with close_all_lock(account.pk) as held:
        running = _running_close(account.pk)
        if running is not None:
            return running
        if not held:
            raise OrderRefused(f"{account.name}: another close everything is still being placed; not started twice")
        previous = _close_alls(account.pk).order_by("-pk").values_list("pk", flat=True).first() or 0
        token = CLOSE_ALL_TOKEN.format(account=account.pk, previous=previous)
        orders_cancel_all(account_id=account.pk)
        try:
            book = brokerbooks.from_result(
                account_client_or_refuse(account).positionbook(), brokerbooks.parse_positionbook
            )
        except brokerbooks.BookUnreadable as e:
            bookwatch.read_bad(account, bookwatch.POSITIONS, str(e))
            raise CloseHeld(
                f"{account.name}: broker positions unreadable ({e}); nothing was sent: "
                "close everything is held until they read true"
            ) from e
        try:
            brokerbooks.check_positionbook(book, positions_held(account.pk))
            bookwatch.read_good(account, bookwatch.POSITIONS)
        except brokerbooks.BookUnknown as e:
            # The book lacks positions we hold (an error answered as an empty book, or a book that
            # lags our fill): never "nothing to close". Our own positions are exited all the same;
            # each exit is held at the reduce-only gate until the broker's book lists it.
            bookwatch.read_bad(account, bookwatch.POSITIONS, str(e))
            audit_record(
                user=user,
                account=account,
                action=AuditAction.ACCOUNT_CLOSED,
                message=f"close everything: broker positions unknown ({e}); the exits of our own positions are "
                "held until the broker's books list them",
            )
        legs = [_exit_leg(*key, q) for key, q in sorted(_to_close(account.pk, book).items())]
        if not legs:
            return None
        return orders_create(
            user=user,
            accounts=[account],
            legs=legs,
            kind=OrderBatch.Kind.EXIT,
            note="close account",
            client_token=token,
        )


def _to_close(account_id: int, book: dict) -> dict:
    """What close everything asks to exit, per instrument: the broker's positions and our own,
    the larger of the two where they agree on the side. A positionbook that lags a fill would
    otherwise hide a position we know is open; asking for too much is safe, since the reduce-only
    gate trims each exit to what both views allow once they agree. (The cancel-all before it has
    just read every live order's status, so our positions include every fill the broker reports.)"""
    wanted = {key: p.quantity for key, p in book.items() if p.quantity}
    ours = Position.objects.filter(account_id=account_id).exclude(quantity=0)
    for p in ours.values("exchange", "symbol", "product", "quantity"):
        key = (p["exchange"], p["symbol"], p["product"])
        broker = wanted.get(key, 0)
        if broker == 0 or (broker > 0) == (p["quantity"] > 0):
            wanted[key] = max(broker, p["quantity"], key=abs)
    return wanted


def account_close_request(*, user, account_id: int, request=None, client_token: str = "") -> bool:
    """Audit the trader's "close everything", then run it on a worker (a slow broker never holds
    the page): `account_close_all` cancels open orders and exits every position. The page's
    one-time `client_token` makes a double submission one request (False: already requested);
    a second request all the same joins the close-out already running."""
    account = account_get_by_id(pk=account_id)
    # The page's token is remembered for an hour (Redis, shared by every web process): long past
    # any double click or resubmission, and the running close-out is joined after that anyway.
    if client_token and not cache.add(f"close-request:{getattr(user, 'pk', None)}:{client_token}", account.pk, 3600):
        return False
    audit_record(
        action=AuditAction.ACCOUNT_CLOSED,
        user=user,
        account=account,
        request=request,
        message="close everything requested",
    )
    enqueue.close_all_on_commit(account.pk, user.pk if user else None)
    return True


def account_close_run(*, account_id: int, user_id: int | None = None) -> OrderBatch | None:
    """The worker's side of `account_close_request`: a refusal (broker positions unreadable) is
    audited, since nobody is waiting on a page to see it."""
    user = get_user_model().objects.filter(pk=user_id).first()
    held_key = f"close-held:{account_id}"
    try:
        batch = account_close_all(user=user, account_id=account_id)
    except CloseHeld as e:
        now = time.time()
        since = cache.get(held_key)
        if since is None:  # the first hold of this close-out is audited; the retries are not
            cache.set(held_key, since := now, int(CLOSE_HELD_LIMIT * 2))
            why = f"{e}; trying again every {CLOSE_HELD_RETRY:g} s"
            audit_record(user=user, action=AuditAction.CLOSE_REFUSED, message=why)
        if now - since < CLOSE_HELD_LIMIT:
            enqueue.close_all_later(account_id, user_id, countdown=CLOSE_HELD_RETRY)
            return None
        cache.delete(held_key)
        account = account_get_by_id(pk=account_id)
        why = f"close everything gave up after {CLOSE_HELD_LIMIT / 60:g} min: {e}"
        audit_record(user=user, account=account, action=AuditAction.CLOSE_REFUSED, message=why)
        alert_raise(kind=AlertKind.BROKER_UNREADABLE, level=AlertLevel.CRITICAL, account=account, message=why)
        return None
    except OrderRefused as e:
        audit_record(user=user, action=AuditAction.CLOSE_REFUSED, message=str(e))
        return None
    cache.delete(held_key)
    return batch
