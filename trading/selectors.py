"""Reads for the trading pages: orders and positions visible to a user, with live P&L."""

from __future__ import annotations

import time
from decimal import Decimal

from django.conf import settings
from django.db.models import QuerySet

from accounts.selectors import account_list_visible_to
from marketdata import store

from . import pnl
from .models import Order, OrderBatch, Position


def orders_visible_to(*, user, account_id: int | None = None) -> QuerySet[Order]:
    qs = Order.objects.filter(account__in=account_list_visible_to(user=user)).select_related("account")
    return qs.filter(account_id=account_id) if account_id else qs


def batch_get(*, user, pk: int) -> OrderBatch | None:
    return OrderBatch.objects.filter(pk=pk, orders__account__in=account_list_visible_to(user=user)).distinct().first()


def order_row(o: Order) -> dict:
    return {
        "id": o.pk,
        "account_id": o.account_id,
        "account": o.account.name,
        "symbol": o.symbol,
        "exchange": o.exchange,
        "action": o.action,
        "quantity": o.quantity,
        "status": o.status,
        "status_label": o.get_status_display(),
        "broker_orderid": o.broker_orderid or "",
        "filled_quantity": o.filled_quantity,
        "average_price": f"{o.average_price:.2f}" if o.average_price is not None else "",
        "error": o.last_error,
        "note": o.note,
        "parent_id": o.parent_id,
    }


def positions_with_pnl(*, user, account_id: int | None = None) -> tuple[list[dict], dict]:
    """Every position with its live P&L (fresh prices only: an open position without one shows
    "no price", never 0), and the totals. One price read for all positions (no N+1)."""
    qs = Position.objects.filter(account__in=account_list_visible_to(user=user)).select_related("account")
    if account_id:
        qs = qs.filter(account_id=account_id)
    positions = list(qs)
    prices = store.prices_get(sorted({p.key for p in positions}))
    now_ms = time.time() * 1000
    rows, parts = [], []
    for p in positions:
        rec = prices.get(p.key)
        ltp = Decimal(str(rec["ltp"])) if store.is_fresh(rec, now_ms, settings.PRICE_MAX_AGE) else None
        result = pnl.pnl(pnl.Position(p.quantity, p.average_price, p.realized), ltp)
        if result is not None:
            parts.append(result)
        rows.append({"position": p, "ltp": ltp, "pnl": result})
    return rows, pnl.total(parts)
