"""Fills pushed on the account's order-update stream reach our books without polling."""

from __future__ import annotations

import threading
from decimal import Decimal

import pytest

from accounts.tests.factories import account_on
from core.testing import wait_for
from trading import services
from trading.models import Order, Position
from trading.orderstream import OrderStreams

Status = Order.Status


@pytest.mark.django_db(transaction=True)
def test_a_limit_fill_arrives_on_the_stream_and_is_applied_once(alice, paper_clean):
    sim = paper_clean[1]
    acc = account_on(sim, owner=alice, name="streamed")
    ltp = sim.ok("quotes", symbol="SBIN", exchange="NSE")["data"]["ltp"]
    limit = Decimal(str(round(ltp * 0.97, 1)))
    batch = services.orders_create(
        user=alice, accounts=[acc], legs=[services.Leg("SBIN", "NSE", "BUY", 3, "LIMIT", price=limit)]
    )
    services.orders_send_account(account_id=acc.pk, batch_id=batch.pk)
    order = batch.orders.get()
    assert order.status == Status.ACCEPTED
    streams = OrderStreams(refresh_every=0.2)
    stop = threading.Event()
    runner = threading.Thread(target=streams.run, args=(stop,), daemon=True)
    runner.start()
    try:
        assert wait_for(lambda: streams.connections.get(acc.pk) and streams.connections[acc.pk].subscribed, 10)
        sim.sim("POST", "price", {"symbol": "SBIN", "exchange": "NSE", "ltp": float(limit) - 1})
        assert wait_for(lambda: Order.objects.get(pk=order.pk).status == Status.COMPLETE, 10), Order.objects.get(
            pk=order.pk
        )
        pos = Position.objects.get(account=acc, symbol="SBIN")
        assert pos.quantity == 3 and pos.average_price > 0
        # The same update again (a reconnect replay, a poll racing the stream) changes nothing.
        o = Order.objects.get(pk=order.pk)
        services.order_apply_update(
            account_id=acc.pk,
            data={
                "orderid": o.broker_orderid,
                "order_status": "complete",
                "filled_quantity": 3,
                "average_price": str(o.average_price),
            },
        )
        services.order_refresh(order_id=o.pk)
        pos.refresh_from_db()
        assert pos.quantity == 3
        # The stream comes back after the broker drops it.
        sim.sim("POST", "ws", {"action": "close"})
        assert wait_for(lambda: streams.connections[acc.pk].subscribed is False, 5)
        assert wait_for(lambda: streams.connections[acc.pk].subscribed, 10)
    finally:
        stop.set()
        runner.join(5)
