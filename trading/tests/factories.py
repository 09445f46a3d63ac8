"""Orders and positions as rows, for tests and seeds that need books without going through a broker.

`build()` gives unsaved rows for `bulk_create` (pass `account` and `batch`: an account is only ever
made by `account_create`); `create()` saves one, making its account and batch when not given.
"""

from __future__ import annotations

from decimal import Decimal

import factory

from accounts.tests.factories import TradingAccountFactory, UserFactory
from trading.models import Order, OrderBatch, Position


class OrderBatchFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = OrderBatch

    user = factory.SubFactory(UserFactory)


class OrderFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Order

    account = factory.SubFactory(TradingAccountFactory)
    batch = factory.SubFactory(OrderBatchFactory, user=factory.SelfAttribute("..account.owner"))
    idempotency_key = factory.Sequence(lambda n: f"test:{n}")
    symbol = "SBIN"
    exchange = "NSE"
    action = Order.Action.BUY
    quantity = 1


class PositionFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Position

    account = factory.SubFactory(TradingAccountFactory)
    symbol = "SBIN"
    exchange = "NSE"
    product = Order.Product.MIS
    quantity = 1
    average_price = Decimal("100")
