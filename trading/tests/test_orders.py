"""Exactly-once order placement against brokersim's faults (no mocks of our code)."""

from __future__ import annotations

import datetime as dt
import os
import time
from decimal import Decimal

import pytest
from django.utils import timezone

from accounts.tests.factories import account_on
from brokersim.testing import Broker, start_brokersim, stop
from trading import services
from trading.models import Order
from trading.services import Leg, OrderRefused

TRIALS = int(os.environ.get("ORDER_FAULT_TRIALS", "2"))  # bench runs 20
Status = Order.Status


@pytest.fixture
def accounts(alice, paper_clean):
    out = []
    for sim in paper_clean[:3]:
        out.append(account_on(sim, owner=alice))
    return list(zip(out, paper_clean[:3], strict=True))


def legs(sim) -> list[Leg]:
    ce, pe = sim.atm_option("CE", "OTM2"), sim.atm_option("PE", "OTM2")
    return [
        Leg(ce, "NFO", "BUY", 65, product="NRML"),
        Leg(pe, "NFO", "BUY", 65, product="NRML"),
        Leg("SBIN", "NSE", "BUY", 3),
        Leg("INFY", "NSE", "BUY", 2),
    ]


def run_until_settled(batch, rounds: int = 8, wait: float = 0) -> None:
    """Drive the pipeline as the workers would: send, and once the grace period has passed
    (the clock is moved, not waited for), reconcile anything unknown."""
    account_ids = set(batch.orders.values_list("account_id", flat=True))
    for a in account_ids:
        services.orders_send_account(account_id=a, batch_id=batch.pk)
    time.sleep(wait)  # a late execution at the broker happens in real time
    for _ in range(rounds):
        later = timezone.now() + dt.timedelta(seconds=60)
        for o in batch.orders.filter(status__in=[Status.UNKNOWN, Status.SENDING]):
            services.order_reconcile(order_id=o.pk, now=later)
        for a in account_ids:
            services.orders_send_account(account_id=a, batch_id=batch.pk)
        if not batch.orders.exclude(status__in=[Status.ACCEPTED, Status.REJECTED]).exists():
            return


def assert_exactly_once(batch, pairs) -> None:
    for account, sim in pairs:
        ours = list(batch.orders.filter(account=account))
        assert all(o.status == Status.ACCEPTED for o in ours), [(o.symbol, o.status, o.last_error) for o in ours]
        ledger = [r for r in sim.ledger() if r["strategy"].startswith("am")]
        tags = [r["strategy"] for r in ledger]
        assert len(tags) == len(set(tags)) == len(ours), tags  # 0 duplicates, nothing missing
        assert {o.broker_orderid for o in ours} == {r["orderid"] for r in ledger}


# Each case: the faults armed on every account for a trial (placeorder unless named), and how long
# a trial waits after sending before it reconciles. The wait stands for the real absence window
# (ORDER_ABSENCE_WINDOW, 60 s) being longer than OpenAlgo's own call to the broker: the tests move
# the reconciliation clock, but brokersim places a late order in real time.
FAULT_CASES = {
    "500": ([{"kind": "status", "value": 500}], 0),
    "drop_after_execute": ([{"kind": "drop_after_execute"}], 0),
    "reset": ([{"kind": "reset"}], 0),
    "429": ([{"kind": "status", "value": 429}], 0),
    "late_average_price": ([{"kind": "late_average_price", "value": 2}], 0),
    "malformed": ([{"kind": "malformed"}], 0),
    "late_execute": ([{"kind": "late_execute", "value": 1}], 2.0),
    "no_orderid": ([{"kind": "no_orderid"}], 0),
    "no_status": ([{"kind": "no_status"}], 0),
    "no_status_empty": ([{"kind": "no_status", "value": "empty"}], 0),
    "orderbook_omits": ([{"kind": "drop_after_execute"}, {"endpoint": "orderbook", "kind": "orderbook_omits"}], 0),
    "positionbook_lag": ([{"kind": "reset"}, {"endpoint": "positionbook", "kind": "positionbook_lag", "value": 3}], 0),
}


@pytest.mark.django_db
@pytest.mark.parametrize("case", list(FAULT_CASES))
def test_exactly_once_under_faults(alice, accounts, case):
    from trading.models import Order, Position, Reconciliation

    faults, wait = FAULT_CASES[case]
    for _trial in range(TRIALS):
        for a, sim in accounts:
            sim.sim("POST", "reset")
            # The broker starts a new day (flat, no orders), so do we: an orderbook that lacks
            # orders we know it accepted today is unknown, never proof (test_empty_books.py).
            Position.objects.filter(account=a).delete()
            Order.objects.filter(account=a).delete()
            for fault in faults:
                sim.sim("POST", "fault", {"endpoint": "placeorder", "count": 2, **fault})
        batch = services.orders_create(user=alice, accounts=[a for a, _ in accounts], legs=legs(accounts[0][1]))
        run_until_settled(batch, wait=wait)
        assert_exactly_once(batch, accounts)
        for _, sim in accounts:
            sim.sim("DELETE", "fault")
        # Our final state matches the broker's: every fill booked at the broker's price, and our
        # positions equal its positionbook (reconciliation finds nothing).
        for _ in range(5):
            for o in batch.orders.filter(status__in=[Status.ACCEPTED, Status.OPEN]):
                services.order_refresh(order_id=o.pk)
        for a, sim in accounts:
            book = {r["orderid"]: r for r in sim.ok("tradebook")["data"]}
            for o in batch.orders.filter(account=a):
                assert o.status == Status.COMPLETE, (o.symbol, o.status)
                assert o.average_price == Decimal(str(book[o.broker_orderid]["average_price"]))
            assert services.account_books_refresh(account_id=a.pk).state == Reconciliation.State.MATCHED


@pytest.mark.django_db
def test_unknown_is_not_resent_before_the_grace_period_or_on_an_unreadable_orderbook(alice, accounts):
    acc, sim = accounts[0]
    sim.sim("POST", "fault", {"endpoint": "placeorder", "kind": "drop_after_execute", "count": 1})
    batch = services.orders_create(user=alice, accounts=[acc], legs=[Leg("SBIN", "NSE", "BUY", 1)])
    services.orders_send_account(account_id=acc.pk, batch_id=batch.pk)
    order = batch.orders.get()
    assert order.status == Status.UNKNOWN
    assert services.order_reconcile(order_id=order.pk).status == Status.UNKNOWN  # too early
    sim.sim("POST", "fault", {"endpoint": "orderbook", "kind": "status", "value": 500})
    later = timezone.now() + dt.timedelta(seconds=60)
    assert services.order_reconcile(order_id=order.pk, now=later).status == Status.UNKNOWN  # broker unreadable
    sim.sim("DELETE", "fault")
    assert services.order_reconcile(order_id=order.pk, now=later).status == Status.ACCEPTED
    assert len(sim.ledger()) == 1


@pytest.mark.django_db
def test_a_worker_that_died_mid_send_is_swept(alice, accounts):
    acc, sim = accounts[0]
    batch = services.orders_create(user=alice, accounts=[acc], legs=[Leg("SBIN", "NSE", "BUY", 1)])
    order = batch.orders.get()
    assert services.send._claim(order)  # claimed, then the worker "died" before sending
    assert services.orders_sweep(now=timezone.now() + dt.timedelta(seconds=60)) >= 1
    order.refresh_from_db()
    assert order.status == Status.PENDING  # provably absent from the orderbook: safe to send
    services.orders_send_account(account_id=acc.pk)
    order.refresh_from_db()
    assert order.status == Status.ACCEPTED and len(sim.ledger()) == 1


@pytest.mark.django_db
def test_a_redelivered_send_task_sends_nothing_twice(alice, accounts):
    acc, sim = accounts[0]
    batch = services.orders_create(user=alice, accounts=[acc], legs=[Leg("SBIN", "NSE", "BUY", 1)] * 3)
    services.orders_send_account(account_id=acc.pk, batch_id=batch.pk)
    services.orders_send_account(account_id=acc.pk, batch_id=batch.pk)
    assert len(sim.ledger()) == 3


@pytest.mark.django_db
def test_late_average_price_is_polled_until_it_arrives(alice, accounts):
    acc, sim = accounts[0]
    sim.sim("POST", "fault", {"endpoint": "placeorder", "kind": "late_average_price", "value": 2, "count": 1})
    batch = services.orders_create(user=alice, accounts=[acc], legs=[Leg("SBIN", "NSE", "BUY", 1)])
    services.orders_send_account(account_id=acc.pk, batch_id=batch.pk)
    order = batch.orders.get()
    seen = [services.order_refresh(order_id=order.pk).status for _ in range(3)]
    assert seen == [Status.OPEN, Status.OPEN, Status.COMPLETE]
    order.refresh_from_db()
    assert order.average_price > 0 and order.filled_quantity == 1


@pytest.mark.django_db
def test_definitive_rejects_and_refusals(alice, accounts):
    acc, sim = accounts[0]
    batch = services.orders_create(user=alice, accounts=[acc], legs=[Leg("SBIN", "NSE", "BUY", 1, product="NRML")])
    services.orders_send_account(account_id=acc.pk, batch_id=batch.pk)
    order = batch.orders.get()
    assert order.status == Status.REJECTED and "NRML" in order.last_error
    acc.trading_state = "halted"
    acc.halt_reason = "test"
    acc.save()
    with pytest.raises(OrderRefused, match="halted"):
        services.orders_create(user=alice, accounts=[acc], legs=[Leg("SBIN", "NSE", "BUY", 1)])
    exit_batch = services.orders_create(
        user=alice, accounts=[acc], legs=[Leg("SBIN", "NSE", "SELL", 1, reduce_only=True)]
    )
    assert exit_batch.orders.count() == 1  # exits are always allowed
    assert len(sim.ledger()) == 0


@pytest.mark.django_db
def test_twelve_orders_a_second_stay_under_8_per_second(alice, tmp_path):
    """brokersim limited to 8 orders/s: no 429 ever means we never sent more than 8 in a second."""
    proc, info = start_brokersim(tmp_path, "--order-rate-limit", "8", accounts=1, seed=4)
    try:
        sim = Broker(info[0])
        acc = account_on(sim, owner=alice, name="throttled")
        batch = services.orders_create(user=alice, accounts=[acc], legs=[Leg("SBIN", "NSE", "BUY", 1)] * 12)
        start = time.monotonic()
        services.orders_send_account(account_id=acc.pk, batch_id=batch.pk)
        elapsed = time.monotonic() - start
        assert sim.sim("GET", "status")["requests"]["placeorder"] == 12  # no 429 → no retries
        assert batch.orders.filter(status=Status.ACCEPTED).count() == 12
        assert elapsed >= 11 / 8 - 0.1
    finally:
        stop(proc)


def test_quantities_are_decimal_safe():
    assert Leg("X", "NSE", "BUY", 1).price == Decimal("0")


@pytest.mark.parametrize(
    ("qty", "lot", "freeze", "parts"),
    [
        (1950, 65, 1800, [1755, 195]),
        (1755, 65, 1800, [1755]),
        (900, 30, 600, [600, 300]),
        (3000, 20, 1000, [1000, 1000, 1000]),
        (10, 1, 0, [10]),
    ],
)
def test_split_quantity(qty, lot, freeze, parts):
    assert services.split_quantity(qty, lot, freeze) == parts
    assert sum(parts) == qty and all(p % lot == 0 for p in parts)


@pytest.mark.django_db
def test_nifty_30_lots_are_split_tracked_and_make_one_position(alice, accounts):
    from trading.models import Position

    acc, sim = accounts[0]
    symbol = sim.atm_option("PE", "OTM4")
    sim.sim("POST", "reset")
    batch = services.orders_create(
        user=alice, accounts=[acc], legs=[Leg(symbol, "NFO", "BUY", 65 * 30, product="NRML")]
    )
    parent = batch.orders.get(parent__isnull=True)
    assert parent.status == Status.SPLIT
    assert sorted(parent.children.values_list("quantity", flat=True)) == [195, 1755]
    services.orders_send_account(account_id=acc.pk, batch_id=batch.pk)
    ledger = sim.ledger()
    assert sorted(r["quantity"] for r in ledger) == [195, 1755]  # nothing above the freeze, parent never sent
    for child in parent.children.all():
        services.order_refresh(order_id=child.pk)
    pos = Position.objects.get(account=acc, symbol=symbol)
    assert pos.quantity == 1950
    assert sim.ok("openposition", strategy="x", symbol=symbol, exchange="NFO", product="NRML")["quantity"] == 1950


@pytest.mark.django_db
def test_fills_build_positions_and_register_feed_interest(alice, accounts, django_capture_on_commit_callbacks):
    from marketdata import store
    from trading.models import Position

    acc, sim = accounts[0]
    buy = services.orders_create(user=alice, accounts=[acc], legs=[Leg("SBIN", "NSE", "BUY", 10)])
    services.orders_send_account(account_id=acc.pk, batch_id=buy.pk)
    with django_capture_on_commit_callbacks(execute=True):
        services.orders_poll_account(account_id=acc.pk)
    pos = Position.objects.get(account=acc, symbol="SBIN")
    assert pos.quantity == 10 and pos.average_price > 0
    assert store.wanted().get("NSE:SBIN") == 1
    sell = services.orders_create(user=alice, accounts=[acc], legs=[Leg("SBIN", "NSE", "SELL", 10, reduce_only=True)])
    services.orders_send_account(account_id=acc.pk, batch_id=sell.pk)
    with django_capture_on_commit_callbacks(execute=True):
        services.orders_poll_account(account_id=acc.pk)
    pos.refresh_from_db()
    assert pos.quantity == 0 and pos.realized != 0  # bid/ask spread paid
    assert "NSE:SBIN" not in store.wanted()  # flat: unregistered
    # A second poll applies nothing twice.
    services.orders_poll_account(account_id=acc.pk)
    pos.refresh_from_db()
    assert pos.quantity == 0
