"""Placing orders exactly once across accounts (invariants I1–I3).

1. `orders_create` writes every intent (unique idempotency key) and commits before anything is
   sent; one Celery task per account is queued on commit.
2. `orders_send_account` claims each pending order with a compare-and-set update
   (pending → sending), sends it, and classifies the outcome (accounts.openalgo.Outcome).
3. An UNKNOWN outcome is never re-sent blindly: `order_reconcile` looks for the order in the
   broker's orderbook (by our tag, else by an unclaimed matching row) once any request still in
   flight must have ended; only an orderbook that provably lacks it sends it again. An unreadable
   orderbook leaves it unknown. `orders_sweep` treats orders stuck in "sending" (a worker died
   mid-send) the same way.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
from dataclasses import dataclass
from decimal import Decimal

from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from accounts import crypto
from accounts.models import TradingAccount
from accounts.services import account_client
from openalgo_client.rest import Outcome, Reason, to_decimal

from .. import events, throttle
from ..models import Order, OrderBatch

log = logging.getLogger(__name__)
Status = Order.Status
MAX_ATTEMPTS = 3
TERMINAL = {"complete": Status.COMPLETE, "cancelled": Status.CANCELLED, "rejected": Status.REJECTED}


class OrderRefused(Exception):
    """The request is refused before anything is written (bad input, halted account)."""


def instrument_info(account: TradingAccount, symbol: str, exchange: str) -> dict:
    """Lot size and freeze quantity from the broker's /symbol (cached 6 h: they change rarely)."""
    from django.core.cache import cache

    key = f"instrument:{exchange}:{symbol}"
    info = cache.get(key)
    if info is None:
        res = _client(account).call("symbol", symbol=symbol, exchange=exchange)
        if not res.ok or not isinstance(res.data, dict):
            raise OrderRefused(f"{symbol} on {exchange}: {res.message or 'unknown instrument'}")
        info = {
            "lotsize": int(to_decimal(res.data.get("lotsize"), Decimal(1))),
            "freeze_qty": int(to_decimal(res.data.get("freeze_qty"), Decimal(0))),
        }
        cache.set(key, info, 6 * 3600)
    return info


def split_quantity(quantity: int, lot: int, freeze: int) -> list[int]:
    """Children no larger than the freeze quantity, each a whole number of lots (pure)."""
    if freeze <= 1 or quantity <= freeze:
        return [quantity]
    step = max(freeze // lot, 1) * lot
    out = [step] * (quantity // step)
    if quantity % step:
        out.append(quantity % step)
    return out


@dataclass(frozen=True)
class Leg:
    symbol: str
    exchange: str
    action: str
    quantity: int
    pricetype: str = "MARKET"
    product: str = "MIS"
    price: Decimal = Decimal("0")
    trigger_price: Decimal = Decimal("0")
    reduce_only: bool = False


def _grace() -> dt.timedelta:
    """How long after sending an outcome stays open: past the client timeout, nothing is in flight."""
    return dt.timedelta(seconds=settings.OPENALGO_TIMEOUT + settings.ORDER_UNKNOWN_GRACE)


# ------------------------------------------------------------------ create
def orders_create(
    *, user, accounts: list[TradingAccount], legs: list[Leg], kind: str = OrderBatch.Kind.MANUAL, note: str = ""
) -> OrderBatch:
    if not accounts or not legs:
        raise OrderRefused("choose at least one account and one leg")
    for a in accounts:
        if not a.is_active:
            raise OrderRefused(f"{a.name} is inactive")
        if a.trading_state != TradingAccount.TradingState.ACTIVE and not all(leg.reduce_only for leg in legs):
            why = f" ({a.halt_reason})" if a.halt_reason else ""
            raise OrderRefused(f"{a.name} is {a.get_trading_state_display().lower()}: only exits are allowed{why}")
    for leg in legs:
        if leg.action not in ("BUY", "SELL") or leg.quantity <= 0:
            raise OrderRefused(f"invalid leg {leg}")
    # Freeze limits are read before the transaction (network), per instrument, from the first account.
    limits = {
        (leg.symbol, leg.exchange): instrument_info(accounts[0], leg.symbol, leg.exchange)
        for leg in legs
        if leg.exchange not in ("NSE", "BSE")
    }
    with transaction.atomic():
        batch = OrderBatch.objects.create(user=user, kind=kind, note=note[:200])
        # BUY legs before SELL legs: hedges first, so a short is never naked in between.
        ordered = sorted(enumerate(legs), key=lambda il: il[1].action != "BUY")
        plain: list[Order] = []  # one INSERT for every unsplit order of the batch
        for a in accounts:
            for i, leg in ordered:
                info = limits.get((leg.symbol, leg.exchange), {"lotsize": 1, "freeze_qty": 0})
                parts = split_quantity(leg.quantity, info["lotsize"], info["freeze_qty"])
                common = {
                    "batch": batch,
                    "account": a,
                    "symbol": leg.symbol,
                    "exchange": leg.exchange,
                    "action": leg.action,
                    "pricetype": leg.pricetype,
                    "product": leg.product,
                    "price": leg.price,
                    "trigger_price": leg.trigger_price,
                    "reduce_only": leg.reduce_only,
                }
                key = f"b{batch.pk}:a{a.pk}:l{i}:g0"
                if len(parts) == 1:
                    plain.append(Order(idempotency_key=key, quantity=leg.quantity, **common))
                    continue
                # Above the freeze quantity: a parent that is never sent, and children that are.
                parent = Order.objects.create(idempotency_key=key, quantity=leg.quantity, status=Status.SPLIT, **common)
                Order.objects.bulk_create(
                    [
                        Order(idempotency_key=f"{key}:c{n}", quantity=q, parent=parent, **common)
                        for n, q in enumerate(parts)
                    ]
                )
        Order.objects.bulk_create(plain)
        from ..tasks import orders_send_task

        for a in accounts:
            transaction.on_commit(lambda pk=a.pk, b=batch.pk: orders_send_task.delay(pk, b))
    return batch


# ------------------------------------------------------------------ send
def _client(account: TradingAccount):
    return account_client(account)


def _claim(order: Order) -> bool:
    """pending → sending, exactly once whoever tries (a redelivered task finds nothing to claim)."""
    return bool(
        Order.objects.filter(pk=order.pk, status=Status.PENDING).update(
            status=Status.SENDING, attempts=F("attempts") + 1, sent_at=timezone.now()
        )
    )


def orders_send_account(*, account_id: int, batch_id: int | None = None) -> list[Order]:
    # The latest reconciliation rides along (one query): entries need it, see _entries_allowed.
    account = TradingAccount.objects.select_related("reconciliation").get(pk=account_id)
    qs = Order.objects.filter(account=account, status=Status.PENDING)
    if batch_id is not None:
        qs = qs.filter(batch_id=batch_id)
    sent = []
    try:
        client = _client(account)
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
            with _exit_lock(order) as held:
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
    from .books import account_reconcile_if_stale

    fresh = account_reconcile_if_stale(account=account)
    if fresh is not None:  # it read the broker just now, which may have halted the account
        account.refresh_from_db(fields=["trading_state", "halt_reason"])
    return account.trading_state == TradingAccount.TradingState.ACTIVE


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
    _record_outcome(order, res)


def _unclaim(order: Order, why: str) -> None:
    """sending → pending without having sent anything (the attempt is not counted)."""
    Order.objects.filter(pk=order.pk, status=Status.SENDING).update(
        status=Status.PENDING, attempts=F("attempts") - 1, last_error=why[:300]
    )
    order.refresh_from_db()
    events.order_changed(order)


class _exit_lock:
    """A Redis lock per (account, instrument) that outlives one send, client timeout included."""

    def __init__(self, order: Order) -> None:
        from marketdata import store

        name = f"lock:exit:{order.account_id}:{order.exchange}:{order.symbol}:{order.product}"
        self.lock = store.client().lock(name, timeout=settings.OPENALGO_TIMEOUT * 2 + 10, blocking_timeout=15)

    def __enter__(self) -> bool:
        self.held = self.lock.acquire()
        return self.held

    def __exit__(self, *exc) -> None:
        if self.held:
            from redis.exceptions import LockError

            # Expired while a send hung: the next sender re-checks the position anyway.
            with contextlib.suppress(LockError):
                self.lock.release()


def _reduce_only_gate(client, order: Order) -> bool:
    """I3: an exit never exceeds the broker's current position, nor flips it. Returns whether
    to send; otherwise the order was held (pending), trimmed-and-sent, or denied locally."""
    from .. import brokerbooks

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


def _record_outcome(order: Order, res) -> None:
    upd: dict = {}
    if res.outcome is Outcome.ACCEPTED:
        oid = str(res.body.get("orderid") or "")
        upd = {"status": Status.ACCEPTED, "broker_orderid": oid or None, "last_error": ""}
    elif res.outcome is Outcome.REJECTED and res.reason in (Reason.RATE_LIMITED, Reason.UNREACHABLE):
        # Provably not executed: queue it again (bounded), never counted as a broker reject.
        upd = {
            "status": Status.PENDING if order.attempts < MAX_ATTEMPTS else Status.REJECTED,
            "last_error": res.message,
        }
    elif res.outcome is Outcome.REJECTED:
        upd = {"status": Status.REJECTED, "last_error": res.message[:300]}
    else:
        upd = {"status": Status.UNKNOWN, "last_error": f"{res.reason}: {res.message}"[:300]}
    if Order.objects.filter(pk=order.pk, status=Status.SENDING).update(**upd):
        for field, value in upd.items():
            setattr(order, field, value)
    else:
        order.refresh_from_db()  # someone else moved it meanwhile (a sweeper): show what is stored
    events.order_changed(order)
    if order.status == Status.UNKNOWN:
        from ..tasks import order_reconcile_task

        order_reconcile_task.apply_async((order.pk,), countdown=_grace().total_seconds())
    elif order.status == Status.PENDING:
        from ..tasks import orders_send_task

        orders_send_task.apply_async((order.account_id, order.batch_id), countdown=1)


# ------------------------------------------------------------------ reconcile
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
    if order.sent_at and now - order.sent_at < _grace():
        return order  # a request may still be in flight: too early to conclude anything
    res = _client(order.account).orderbook()
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
            from ..tasks import orders_send_task

            transaction.on_commit(lambda: orders_send_task.delay(order.account_id, order.batch_id))
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
    """Recover what a dead worker left behind: orders stuck in "sending" or "unknown" are reconciled;
    pending orders whose send task was lost (acked, then the worker died) are queued again — a
    duplicate task is harmless, the claim lets one sender through."""
    now = now or timezone.now()
    stuck = Order.objects.filter(status__in=[Status.SENDING, Status.UNKNOWN], sent_at__lt=now - _grace())
    n = 0
    for pk in stuck.values_list("pk", flat=True):
        order_reconcile(order_id=pk, now=now)
        n += 1
    from ..tasks import orders_send_task

    waiting = (
        Order.objects.filter(status=Status.PENDING, updated_at__lt=now - dt.timedelta(seconds=5))
        .values_list("account_id", "batch_id")
        .distinct()
    )
    for account_id, batch_id in waiting:
        orders_send_task.delay(account_id, batch_id)
        n += 1
    return n


# ------------------------------------------------------------------ fills
def order_refresh(*, order_id: int) -> Order:
    """Read one accepted order's status from the broker (fills, cancels, rejects)."""
    order = Order.objects.select_related("account").get(pk=order_id)
    if order.status not in (Status.ACCEPTED, Status.OPEN) or not order.broker_orderid:
        return order
    res = _client(order.account).orderstatus(orderid=order.broker_orderid, strategy=order.tag)
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
    from .. import pnl
    from ..models import Position

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
    from marketdata.services import interest_register

    from ..models import Position

    keys = {f"{e}:{s}": 1 for e, s in Position.objects.exclude(quantity=0).values_list("exchange", "symbol")}
    interest_register(owner="positions", keys=keys)


def orders_poll_account(*, account_id: int, limit: int = 2) -> int:
    """Refresh the open orders of one account, at most `limit` a run (1 request/s at a 2 s beat)."""
    qs = Order.objects.filter(account_id=account_id, status__in=[Status.ACCEPTED, Status.OPEN]).order_by("updated_at")
    n = 0
    for pk in qs.values_list("pk", flat=True)[:limit]:
        order_refresh(order_id=pk)
        n += 1
    return n


# ------------------------------------------------------------------ modify / cancel / close
LIVE = [Status.ACCEPTED, Status.OPEN]


def _live_order(order_id: int) -> Order:
    order = Order.objects.select_related("account").get(pk=order_id)
    if order.status not in LIVE or not order.broker_orderid:
        raise OrderRefused(f"order {order.pk} is {order.get_status_display().lower()}: nothing to change")
    return order


def order_cancel(*, order_id: int) -> Order:
    """Cancel one open order. Cancelling twice is harmless at the broker, so an unknown outcome
    is settled by reading the order's status, never by guessing."""
    order = _live_order(order_id)
    throttle.acquire(order.account_id)
    res = _client(order.account).cancelorder(orderid=order.broker_orderid, strategy=order.tag)
    if not res.ok:
        Order.objects.filter(pk=order.pk).update(last_error=f"cancel: {res.message or res.reason}"[:300])
    # Filled before the cancel arrived, cancelled, or still open: the broker's status says which.
    return order_refresh(order_id=order.pk)


def order_modify(*, order_id: int, pricetype: str, quantity: int, price: Decimal, trigger_price: Decimal) -> Order:
    order = _live_order(order_id)
    account = order.account
    if account.trading_state != TradingAccount.TradingState.ACTIVE and not order.reduce_only:
        raise OrderRefused(f"{account.name} is {account.get_trading_state_display().lower()}: modifying is refused")
    if quantity < max(order.filled_quantity, 1):
        raise OrderRefused(f"quantity cannot go below the {order.filled_quantity} already filled")
    if order.reduce_only and quantity > order.quantity:
        raise OrderRefused("an exit's quantity can only be reduced")
    if pricetype in ("LIMIT", "SL") and price <= 0:
        raise OrderRefused("a limit price is required for this order type")
    if pricetype in ("SL", "SL-M") and trigger_price <= 0:
        raise OrderRefused("a trigger price is required for stop orders")
    throttle.acquire(account.pk)
    res = _client(account).modifyorder(
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
    return order_refresh(order_id=order.pk)


def orders_cancel_all(*, account_id: int) -> dict:
    """Cancel every open order in one account (ours and any placed outside AlgoMirror)."""
    account = TradingAccount.objects.get(pk=account_id)
    res = _client(account).cancelallorder(strategy="algomirror")
    body = res.body if isinstance(res.body, dict) else {}
    for pk in Order.objects.filter(account=account, status__in=LIVE).values_list("pk", flat=True):
        order_refresh(order_id=pk)
    return {
        "ok": res.ok,
        "message": res.message or body.get("message", ""),
        "cancelled": len(body.get("canceled_orders") or []),
    }


def _exit_leg(exchange: str, symbol: str, product: str, quantity: int) -> Leg:
    return Leg(symbol, exchange, "SELL" if quantity > 0 else "BUY", abs(quantity), "MARKET", product, reduce_only=True)


def position_close(*, user, position_id: int) -> OrderBatch:
    """A reduce-only market exit for one of our positions (trimmed at send time to what the
    broker still holds)."""
    from ..models import Position

    pos = Position.objects.select_related("account").get(pk=position_id)
    if pos.quantity == 0:
        raise OrderRefused(f"{pos.symbol} is already flat")
    leg = _exit_leg(pos.exchange, pos.symbol, pos.product, pos.quantity)
    return orders_create(user=user, accounts=[pos.account], legs=[leg], kind=OrderBatch.Kind.EXIT, note="close")


def account_close_all(*, user, account_id: int) -> OrderBatch | None:
    """Flatten one account: cancel its open orders, then exit every position the broker shows
    (short legs bought back first). Refused when the broker's positions cannot be read."""
    from .. import brokerbooks

    account = TradingAccount.objects.get(pk=account_id)
    orders_cancel_all(account_id=account.pk)
    try:
        book = brokerbooks.from_result(_client(account).positionbook(), brokerbooks.parse_positionbook)
    except brokerbooks.BookUnreadable as e:
        raise OrderRefused(f"{account.name}: broker positions unreadable ({e}); nothing was sent") from e
    legs = [_exit_leg(*key, p.quantity) for key, p in sorted(book.items()) if p.quantity]
    if not legs:
        return None
    return orders_create(user=user, accounts=[account], legs=legs, kind=OrderBatch.Kind.EXIT, note="close account")


def account_close_request(*, user, account_id: int, request=None) -> None:
    """Audit the trader's "close everything", then run it on a worker (a slow broker never holds
    the page): `account_close_all` cancels open orders and exits every position."""
    from accounts.models import AuditEvent
    from accounts.services import audit_record

    from ..tasks import account_close_all_task

    account = TradingAccount.objects.get(pk=account_id)
    audit_record(
        action=AuditEvent.Action.ACCOUNT_CLOSED,
        user=user,
        account=account,
        request=request,
        message="close everything requested",
    )
    transaction.on_commit(lambda: account_close_all_task.delay(account.pk, user.pk if user else None))
