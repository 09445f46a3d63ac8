"""Writing order intents (invariant I1): every order of a batch, with its unique idempotency key,
is committed before anything is sent; one send task per account is queued on commit."""

from __future__ import annotations

from decimal import Decimal
from typing import TYPE_CHECKING

from django.core.cache import cache
from django.db import IntegrityError, transaction

from accounts.choices import TradingState
from accounts.services import account_client
from openalgo_client.rest import to_decimal

from ..freeze import split_quantity
from ..models import Order, OrderBatch
from . import enqueue
from .common import Leg, OrderRefused, Status

if TYPE_CHECKING:
    from accounts.models import TradingAccount


def instrument_info(account: TradingAccount, symbol: str, exchange: str) -> dict:
    """Lot size and freeze quantity from the broker's /symbol (cached 6 h: they change rarely)."""
    key = f"instrument:{exchange}:{symbol}"
    info = cache.get(key)
    if info is None:
        res = account_client(account).call("symbol", symbol=symbol, exchange=exchange)
        if not res.ok or not isinstance(res.data, dict):
            raise OrderRefused(f"{symbol} on {exchange}: {res.message or 'unknown instrument'}")
        info = {
            "lotsize": int(to_decimal(res.data.get("lotsize"), Decimal(1))),
            "freeze_qty": int(to_decimal(res.data.get("freeze_qty"), Decimal(0))),
        }
        cache.set(key, info, 6 * 3600)
    return info


TOKEN_MAX = OrderBatch._meta.get_field("client_token").max_length


def orders_create(
    *,
    user,
    accounts: list[TradingAccount],
    legs: list[Leg],
    kind: str = OrderBatch.Kind.MANUAL,
    note: str = "",
    client_token: str = "",
) -> OrderBatch:
    """Write one batch: an order per account and leg (split above the freeze quantity), all
    committed before anything is sent; one send task per account is queued on commit.

    `client_token` makes the request idempotent as a whole. Each order's idempotency key
    includes its batch, so it stops an order being sent twice but not a second batch for the
    same intent; the token does. A non-empty token is unique per `user`: the first call makes
    the batch, and any later call with the same user and token returns that batch, writes nothing
    and queues nothing (even if the account has been halted since: a repeat is not a new request).
    Two concurrent calls make one batch: the second waits on the database's unique index and then
    returns the first's. The returned batch's `repeat` says whether it was already there.

    Who passes what: a form carries a one-time token per render (a double click or a resubmitted
    page repeats it); a risk trigger passes its own stable key for "this exit of this run", so
    re-firing (a retry, two workers, a second evaluation of the same breach) never makes a second
    exit. Up to 64 characters. With `user=None` the database cannot enforce the token (NULLs are
    distinct), so a caller without a user must not rely on it under concurrency.
    """
    if len(client_token) > TOKEN_MAX:
        raise OrderRefused(f"client token longer than {TOKEN_MAX} characters")
    if client_token:
        existing = batch_for_token(user, client_token)
        if existing is not None:
            return existing
    if not accounts or not legs:
        raise OrderRefused("choose at least one account and one leg")
    for a in accounts:
        if not a.is_active:
            raise OrderRefused(f"{a.name} is inactive")
        if a.trading_state != TradingState.ACTIVE and not all(leg.reduce_only for leg in legs):
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
    try:
        batch = _batch_write(user, accounts, legs, limits, kind=kind, note=note, client_token=client_token)
    except IntegrityError:
        # Another request with this token committed its batch after our read above: ours rolled
        # back whole (no order of it was written), theirs is the answer.
        existing = batch_for_token(user, client_token) if client_token else None
        if existing is None:
            raise
        return existing
    batch.repeat = False
    return batch


def batch_for_token(user, client_token: str) -> OrderBatch | None:
    """The batch `user` already made with `client_token` (marked `repeat`), or None."""
    batch = OrderBatch.objects.filter(user=user, client_token=client_token).first()
    if batch is not None:
        batch.repeat = True
    return batch


def _batch_write(user, accounts, legs, limits, *, kind: str, note: str, client_token: str) -> OrderBatch:
    with transaction.atomic():
        batch = OrderBatch.objects.create(user=user, kind=kind, note=note[:200], client_token=client_token)
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
        for a in accounts:
            enqueue.send_on_commit(a.pk, batch.pk)
    return batch
