"""Seeding a user's books at scale, shared by the query-count test and the books benchmark."""

from __future__ import annotations

import itertools
from decimal import Decimal

from django.utils import timezone

from accounts.services import account_funds_store
from accounts.tests.factories import TradingAccountFactory

from .models import BrokerBook, Order, Position, Reconciliation
from .tests.factories import OrderBatchFactory, OrderFactory, PositionFactory

SYMBOLS = ["SBIN", "INFY", "TCS", "RELIANCE", "HDFCBANK", "ITC", "LT", "AXISBANK"]
STATUSES = [Order.Status.COMPLETE, Order.Status.OPEN, Order.Status.CANCELLED, Order.Status.REJECTED]


def books_seed(*, user, accounts: int, orders: int, host: str = "http://127.0.0.1:9", start: int = 0):
    """`accounts` more accounts for `user`, with `orders` orders spread over them, a position per
    symbol, today's trades and holdings copies, funds, and every fifth account flagged."""
    now = timezone.now()
    made = [TradingAccountFactory(owner=user, name=f"acct-{start + i:03d}", host_url=host) for i in range(accounts)]
    funds = {
        "available_cash": "500000.00",
        "collateral": "0",
        "m2m_realized": "120.50",
        "m2m_unrealized": "-40.25",
        "utilised": "125000.00",
    }
    account_funds_store(account_ids=[a.pk for a in made], funds=funds, funds_at=now)
    batch = OrderBatchFactory(user=user)
    cycle = itertools.cycle(itertools.product(made, SYMBOLS))
    Order.objects.bulk_create(
        [
            OrderFactory.build(
                batch=batch,
                account=a,
                idempotency_key=f"seed:{batch.pk}:{n}",
                symbol=s,
                exchange="NSE",
                action="BUY" if n % 2 else "SELL",
                quantity=1 + n % 5,
                status=STATUSES[n % len(STATUSES)],
                broker_orderid=f"S{batch.pk}-{n}",
                filled_quantity=1 + n % 5 if n % len(STATUSES) == 0 else 0,
                average_price=Decimal("100.5") if n % len(STATUSES) == 0 else None,
            )
            for n, (a, s) in zip(range(orders), cycle, strict=False)
        ]
    )
    Position.objects.bulk_create(
        [
            PositionFactory.build(
                account=a,
                symbol=s,
                exchange="NSE",
                product="MIS",
                quantity=(i % 3) - 1 or 5,
                average_price=Decimal("100.25"),
                realized=Decimal("12.5"),
            )
            for a in made
            for i, s in enumerate(SYMBOLS[:4])
        ]
    )
    trades = [
        {
            "orderid": f"T{i}",
            "symbol": s,
            "exchange": "NSE",
            "product": "MIS",
            "action": "BUY",
            "quantity": 1,
            "price": "100.5",
            "value": "100.5",
            "strategy": "am1" if i % 2 else "manual",
            "time": "10:15:00",
        }
        for i, s in enumerate(SYMBOLS)
    ]
    holdings = [
        {"symbol": "ITC", "exchange": "NSE", "quantity": 10, "average_price": "400", "ltp": "410", "pnl": "100"}
    ]
    BrokerBook.objects.bulk_create(
        [BrokerBook(account=a, kind="trades", ok=True, rows=trades, fetched_at=now) for a in made]
        + [BrokerBook(account=a, kind="holdings", ok=True, rows=holdings, fetched_at=now) for a in made]
    )
    Reconciliation.objects.bulk_create(
        [
            Reconciliation(
                account=a,
                state=Reconciliation.State.MISMATCH if i % 5 == 0 else Reconciliation.State.MATCHED,
                differences=[
                    {"exchange": "NSE", "symbol": "ITC", "product": "MIS", "ours": 0, "broker": 3, "kind": "outside"}
                ]
                if i % 5 == 0
                else [],
                checked_at=now,
            )
            for i, a in enumerate(made)
        ]
    )
    return made
