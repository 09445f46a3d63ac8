"""Writing order intents (invariant I1): every order of a batch, with its unique idempotency key,
is committed before anything is sent; one send task per account is queued on commit."""

from __future__ import annotations

from decimal import Decimal
from typing import TYPE_CHECKING

from django.core.cache import cache
from django.db import transaction

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


def orders_create(
    *, user, accounts: list[TradingAccount], legs: list[Leg], kind: str = OrderBatch.Kind.MANUAL, note: str = ""
) -> OrderBatch:
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
        for a in accounts:
            enqueue.send_on_commit(a.pk, batch.pk)
    return batch
