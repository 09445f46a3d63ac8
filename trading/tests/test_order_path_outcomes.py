"""The order path when the broker's answer is ambiguous or stale (brokersim is the broker):

1. polling is fair (least recently polled first), so a newer order is not starved;
2. absence is proven by several orderbook reads past a window before anything is sent again, and
   an order that turns up late is adopted, never sent twice;
3. replies are classed per I2 (success without an order id, no status, a 429 on placeorder);
4. fills never go backwards, and a cancel after a partial fill is settled from the tradebook;
5. an exit that cannot be placed is retried with spacing, then needs a human (account reducing,
   audit row, critical alert).
"""

from __future__ import annotations

import datetime as dt
import time
from decimal import Decimal

import pytest
from django.utils import timezone

from accounts.choices import AlertKind, AuditAction, TradingState
from accounts.models import Alert, AuditEvent, TradingAccount
from accounts.tests.factories import account_on
from core.testing import wait_for
from openalgo_client.rest import classify
from trading import services
from trading.models import Order, Position
from trading.services import Leg, outcome

pytestmark = pytest.mark.django_db
Status = Order.Status


@pytest.fixture
def acc(alice, paper_clean):
    sim = paper_clean[0]  # the sandbox profile: orderstatus carries filled_quantity
    return account_on(sim, owner=alice), sim


@pytest.fixture
def fast(settings):
    """Short windows, so a test waits seconds where production waits a minute."""
    settings.OPENALGO_TIMEOUT = 1.0
    settings.ORDER_UNKNOWN_GRACE = 0.0
    settings.ORDER_ABSENCE_WINDOW = 6.0
    settings.ORDER_ABSENT_READS = 3
    settings.EXIT_RETRY_SECONDS = 0.5
    settings.EXIT_MAX_ATTEMPTS = 5
    settings.ORDER_STATUS_CONFIRM_SECONDS = 0.2  # a broker's "rejected" is confirmed by a read this much later
    return settings


def place(user, account, *legs: Leg):
    batch = services.orders_create(user=user, accounts=[account], legs=list(legs))
    services.orders_send_account(account_id=account.pk, batch_id=batch.pk)
    return batch


def ours(sim) -> list[dict]:
    return [r for r in sim.ledger() if r["strategy"].startswith("am")]


def requests(sim, endpoint: str) -> int:
    return sim.sim("GET", "status")["requests"].get(endpoint, 0)


def after_window(order: Order, settings, extra: float = 1.0) -> dt.datetime:
    return order.sent_at + dt.timedelta(seconds=settings.ORDER_ABSENCE_WINDOW + extra)


# ---------------------------------------------------------------- 1. fair polling
def test_two_resting_limits_do_not_starve_a_newer_market_order(alice, acc):
    account, sim = acc
    ltp = Decimal(str(sim.ok("quotes", symbol="SBIN", exchange="NSE")["data"]["ltp"]))
    far = (ltp / 2).quantize(Decimal("1"))  # a BUY limit at half the price rests all day
    place(
        alice,
        account,
        Leg("SBIN", "NSE", "BUY", 1, "LIMIT", price=far),
        Leg("SBIN", "NSE", "BUY", 2, "LIMIT", price=far),
    )
    market = place(alice, account, Leg("INFY", "NSE", "BUY", 1)).orders.get()
    assert market.status == Status.ACCEPTED
    for _ in range(5):
        services.orders_poll_account(account_id=account.pk)  # 2 orders a run
    market.refresh_from_db()
    assert (market.status, market.filled_quantity) == (Status.COMPLETE, 1)
    assert not Order.objects.filter(account=account, polled_at__isnull=True).exists()  # every poll stamped


# ---------------------------------------------------------------- 2. absence proven before a resend
def test_an_order_placed_late_by_openalgo_is_adopted_never_sent_twice(alice, acc, fast):
    """OpenAlgo keeps talking to the broker after our client gave up: the order appears 4 s later.
    Orderbook reads inside the window find nothing, and that proves nothing."""
    account, sim = acc
    sim.sim("POST", "fault", {"endpoint": "placeorder", "kind": "late_execute", "value": 4, "count": 1})
    started = time.monotonic()
    batch = place(alice, account, Leg("SBIN", "NSE", "BUY", 1))
    order = batch.orders.get()
    assert order.status == Status.UNKNOWN
    while time.monotonic() - started < 15:
        services.order_reconcile(order_id=order.pk)
        services.orders_send_account(account_id=account.pk, batch_id=batch.pk)
        order.refresh_from_db()
        if order.status == Status.ACCEPTED:
            break
        time.sleep(0.3)
    wait_for(lambda: time.monotonic() - started > 5, 6)  # the late order has landed by now
    ledger = ours(sim)
    assert len(ledger) == 1, ledger
    assert order.status == Status.ACCEPTED and order.broker_orderid == ledger[0]["orderid"]


def test_an_orderbook_that_omits_the_order_twice_does_not_prove_it_absent(alice, acc, settings):
    account, sim = acc
    # The next two orderbook reads leave out what is placed from now on: our order.
    sim.sim("POST", "fault", {"endpoint": "orderbook", "kind": "orderbook_omits", "count": 2})
    sim.sim("POST", "fault", {"endpoint": "placeorder", "kind": "drop_after_execute", "count": 1})
    batch = place(alice, account, Leg("SBIN", "NSE", "BUY", 1))
    order = batch.orders.get()
    later = after_window(order, settings)
    seen = []
    for _ in range(3):
        seen.append(services.order_reconcile(order_id=order.pk, now=later).status)
        services.orders_send_account(account_id=account.pk, batch_id=batch.pk)
    assert seen == [Status.UNKNOWN, Status.UNKNOWN, Status.ACCEPTED]
    assert len(ours(sim)) == 1


def test_absence_needs_several_reads_past_the_window_and_the_cap_is_not_a_guess(alice, acc, settings):
    account, sim = acc
    sim.sim("POST", "fault", {"endpoint": "placeorder", "kind": "status", "value": 500})  # never executes
    batch = place(alice, account, Leg("SBIN", "NSE", "BUY", 1))
    order = batch.orders.get()
    assert order.status == Status.UNKNOWN
    inside = order.sent_at + dt.timedelta(seconds=settings.ORDER_ABSENCE_WINDOW - 5)
    for _ in range(4):  # reads inside the window (OpenAlgo may still be calling the broker) count for nothing
        assert services.order_reconcile(order_id=order.pk, now=inside).status == Status.UNKNOWN
    for n in range(1, settings.ORDER_ABSENT_READS):
        o = services.order_reconcile(order_id=order.pk, now=after_window(order, settings))
        assert (o.status, o.absent_reads) == (Status.UNKNOWN, n)
    assert services.order_reconcile(order_id=order.pk, now=after_window(order, settings)).status == Status.PENDING
    # Attempts 2 and 3 fail the same way; after the cap nothing is sent again.
    for _ in range(10):
        services.orders_send_account(account_id=account.pk, batch_id=batch.pk)
        order.refresh_from_db()
        for _ in range(settings.ORDER_ABSENT_READS):
            services.order_reconcile(order_id=order.pk, now=after_window(order, settings))
    order.refresh_from_db()
    assert requests(sim, "placeorder") == 3
    assert order.status == Status.REJECTED and "absent" in order.last_error, order.last_error


# ---------------------------------------------------------------- 3. outcome classes (I2)
def test_success_without_an_order_id_is_unknown_and_settled_from_the_orderbook(alice, acc, settings):
    account, sim = acc
    sim.sim("POST", "fault", {"endpoint": "placeorder", "kind": "no_orderid", "count": 1})
    batch = place(alice, account, Leg("SBIN", "NSE", "BUY", 1))
    order = batch.orders.get()
    assert order.status == Status.UNKNOWN and not order.broker_orderid
    order = services.order_reconcile(order_id=order.pk, now=timezone.now() + dt.timedelta(seconds=30))
    [placed] = ours(sim)
    assert (order.status, order.broker_orderid) == (Status.ACCEPTED, placed["orderid"])
    services.orders_poll_account(account_id=account.pk)
    order.refresh_from_db()
    assert order.status == Status.COMPLETE and order.filled_quantity == 1


def test_an_order_queued_for_approval_at_openalgo_is_unknown_and_never_resent(alice, acc, settings):
    """Semi-auto mode (brokersim has no such mode): the reply as OpenAlgo sends it."""
    account, sim = acc
    batch = services.orders_create(user=alice, accounts=[account], legs=[Leg("SBIN", "NSE", "BUY", 1)])
    order = batch.orders.get()
    assert services.send._claim(order)
    Order.objects.filter(pk=order.pk).update(sent_at=timezone.now())  # as the sender stamps it
    order.refresh_from_db()
    # The reply as the client classes OpenAlgo's answer in semi-auto mode.
    reply = classify("placeorder", 200, {"status": "success", "mode": "semi_auto", "pending_order_id": "p-17"})
    outcome.record_outcome(order, reply)
    order.refresh_from_db()
    assert order.status == Status.UNKNOWN and order.last_error.startswith("queued for approval at OpenAlgo")
    for _ in range(settings.ORDER_ABSENT_READS + 1):
        assert services.order_reconcile(order_id=order.pk, now=after_window(order, settings)).status == Status.UNKNOWN
    assert sim.ledger() == []


@pytest.mark.parametrize("value", [None, "empty"], ids=["{}", "empty body"])
def test_a_200_without_status_is_unknown_not_rejected(alice, acc, value):
    account, sim = acc
    sim.sim("POST", "fault", {"endpoint": "placeorder", "kind": "no_status", "value": value, "count": 1})
    batch = place(alice, account, Leg("SBIN", "NSE", "BUY", 1))
    order = batch.orders.get()
    assert order.status == Status.UNKNOWN, (order.status, order.last_error)
    order = services.order_reconcile(order_id=order.pk, now=timezone.now() + dt.timedelta(seconds=30))
    [placed] = ours(sim)
    assert (order.status, order.broker_orderid) == (Status.ACCEPTED, placed["orderid"])


def test_a_429_on_placeorder_is_checked_against_the_orderbook_once_then_requeued(alice, acc):
    account, sim = acc
    sim.sim("POST", "fault", {"endpoint": "placeorder", "kind": "status", "value": 429, "count": 1})
    books = requests(sim, "orderbook")
    batch = place(alice, account, Leg("SBIN", "NSE", "BUY", 1))
    order = batch.orders.get()
    # No retry inside the client (it would bypass our throttle): the reply goes to the order path,
    # which reads the orderbook once (the reply came back, no window to wait out) before requeuing.
    assert requests(sim, "placeorder") == 1
    assert requests(sim, "orderbook") == books + 1
    assert order.status == Status.PENDING and "429" in order.last_error
    services.orders_send_account(account_id=account.pk, batch_id=batch.pk)
    order.refresh_from_db()
    assert order.status == Status.ACCEPTED and len(ours(sim)) == 1


def test_a_429_whose_orderbook_cannot_be_read_waits_for_one_good_read(alice, acc):
    account, sim = acc
    sim.sim("POST", "fault", {"endpoint": "placeorder", "kind": "status", "value": 429, "count": 1})
    sim.sim("POST", "fault", {"endpoint": "orderbook", "kind": "status", "value": 500, "count": 1})
    batch = place(alice, account, Leg("SBIN", "NSE", "BUY", 1))
    order = batch.orders.get()
    assert order.status == Status.UNKNOWN and "429" in order.last_error
    assert services.order_reconcile(order_id=order.pk).status == Status.PENDING  # no window: one read
    services.orders_send_account(account_id=account.pk, batch_id=batch.pk)
    order.refresh_from_db()
    assert order.status == Status.ACCEPTED and len(ours(sim)) == 1


# ---------------------------------------------------------------- 4. fills never go backwards
def partly_filled(alice, account, sim) -> Order:
    """BUY 10 SBIN that fills 5 and rests (brokersim partial_fill), polled once."""
    sim.sim("POST", "fault", {"endpoint": "placeorder", "kind": "partial_fill", "value": 0.5, "count": 1})
    order = place(alice, account, Leg("SBIN", "NSE", "BUY", 10)).orders.get()
    order = services.order_refresh(order_id=order.pk)
    assert (order.status, order.filled_quantity) == (Status.OPEN, 5)
    return order


def test_a_stale_lower_fill_is_ignored_and_nothing_is_booked_twice(alice, acc):
    account, sim = acc
    order = partly_filled(alice, account, sim)
    avg = str(order.average_price)
    stale = {"orderid": order.broker_orderid, "order_status": "open", "filled_quantity": 3, "average_price": avg}
    services.order_apply_update(account_id=account.pk, data=stale)
    order.refresh_from_db()
    assert order.filled_quantity == 5
    again = dict(stale, filled_quantity=5)
    services.order_apply_update(account_id=account.pk, data=again)
    assert Position.objects.get(account=account, symbol="SBIN").quantity == 5


def test_an_average_of_zero_never_wipes_a_known_average(alice, acc):
    account, sim = acc
    order = partly_filled(alice, account, sim)
    first = order.average_price
    # The live profile's orderstatus: no filled_quantity, average 0.0 until complete.
    services.order_apply_update(
        account_id=account.pk, data={"orderid": order.broker_orderid, "order_status": "open", "average_price": 0.0}
    )
    order.refresh_from_db()
    assert order.average_price == first
    done = Decimal("101.5")
    services.order_apply_update(
        account_id=account.pk,
        data={
            "orderid": order.broker_orderid,
            "order_status": "complete",
            "filled_quantity": 10,
            "average_price": done,
        },
    )
    pos = Position.objects.get(account=account, symbol="SBIN")
    assert pos.quantity == 10 and pos.average_price == done  # the order's average is the position's cost


def test_a_cancel_after_a_partial_fill_is_settled_from_the_tradebook(alice, acc):
    account, sim = acc
    sim.sim("POST", "fault", {"endpoint": "placeorder", "kind": "partial_fill", "value": 0.5, "count": 1})
    order = place(alice, account, Leg("SBIN", "NSE", "BUY", 10)).orders.get()
    sim.ok("cancelorder", orderid=order.broker_orderid, strategy=order.tag)
    # Live-shaped update: a terminal status without a filled quantity (nothing polled before it).
    services.order_apply_update(
        account_id=account.pk, data={"orderid": order.broker_orderid, "order_status": "cancelled", "average_price": 0.0}
    )
    order.refresh_from_db()
    # The fills are booked at once; the cancel itself waits for its confirming read.
    assert (order.status, order.filled_quantity) == (Status.OPEN, 5)
    order = services.order_refresh(order_id=order.pk, now=timezone.now() + dt.timedelta(seconds=5))
    [row] = [r for r in sim.ledger() if r["orderid"] == order.broker_orderid]
    assert (order.status, order.filled_quantity) == (Status.CANCELLED, 5)
    assert order.average_price == Decimal(str(row["average_price"]))
    assert Position.objects.get(account=account, symbol="SBIN").quantity == 5


# ---------------------------------------------------------------- 5. an exit that cannot be placed
@pytest.mark.parametrize("state", [TradingState.ACTIVE, TradingState.HALTED])
def test_an_exit_the_broker_keeps_rejecting_is_retried_spaced_then_needs_attention(alice, acc, fast, state):
    account, sim = acc
    buy = place(alice, account, Leg("SBIN", "NSE", "BUY", 2)).orders.get()
    services.order_refresh(order_id=buy.pk)
    TradingAccount.objects.filter(pk=account.pk).update(trading_state=state, halt_reason="test")
    sim.sim("POST", "fault", {"endpoint": "placeorder", "kind": "reject", "value": "RMS: exit blocked"})
    position = Position.objects.get(account=account, symbol="SBIN")
    batch = services.position_close(user=alice, position_id=position.pk)
    exit_order = batch.orders.get()
    placed_at: list[float] = []
    started = time.monotonic()
    while time.monotonic() - started < 20:
        services.orders_send_account(account_id=account.pk, batch_id=batch.pk)
        n = len([r for r in sim.ledger() if r["strategy"] == exit_order.tag])
        placed_at += [time.monotonic()] * (n - len(placed_at))
        services.orders_poll_account(account_id=account.pk)
        services.order_reconcile(order_id=exit_order.pk)
        exit_order.refresh_from_db()
        if exit_order.status not in (Status.PENDING, Status.SENDING, Status.UNKNOWN, Status.ACCEPTED, Status.OPEN):
            break
        time.sleep(0.05)
    attempts = [r for r in sim.ledger() if r["strategy"] == exit_order.tag]
    assert exit_order.status == Status.ATTENTION, (exit_order.status, exit_order.last_error)
    assert len(attempts) == 5 and {r["status"] for r in attempts} == {"rejected"}
    gaps = [b - a for a, b in zip(placed_at, placed_at[1:], strict=False)]
    assert min(gaps) >= 0.45, gaps  # 0.5 s apart (measured by the driver, so a little slack)
    account.refresh_from_db()
    assert account.trading_state == (TradingState.REDUCING if state == TradingState.ACTIVE else TradingState.HALTED)
    assert AuditEvent.objects.filter(account=account, action=AuditAction.EXIT_NEEDS_ATTENTION).count() == 1
    alert = Alert.objects.get(account=account, kind=AlertKind.EXIT_NEEDS_ATTENTION)
    assert alert.level == Alert.Level.CRITICAL and "SBIN" in alert.message


def test_an_exit_whose_fate_cannot_be_read_needs_attention_not_silence(alice, acc, settings):
    """The broker breaks mid-exit and its orderbook stays unreadable: nothing is sent again on a
    guess, and once all its retries would have taken, the exit is handed to a human."""
    account, sim = acc
    buy = place(alice, account, Leg("SBIN", "NSE", "BUY", 1)).orders.get()
    services.order_refresh(order_id=buy.pk)
    sim.sim("POST", "fault", {"endpoint": "placeorder", "kind": "status", "value": 500})
    sim.sim("POST", "fault", {"endpoint": "orderbook", "kind": "status", "value": 500})
    position = Position.objects.get(account=account, symbol="SBIN")
    exit_order = services.position_close(user=alice, position_id=position.pk).orders.get()
    services.orders_send_account(account_id=account.pk)
    exit_order.refresh_from_db()
    assert exit_order.status == Status.UNKNOWN
    give_up = settings.ORDER_ABSENCE_WINDOW + settings.EXIT_RETRY_SECONDS * settings.EXIT_MAX_ATTEMPTS
    before = exit_order.sent_at + dt.timedelta(seconds=give_up - 1)
    assert services.order_reconcile(order_id=exit_order.pk, now=before).status == Status.UNKNOWN
    after = exit_order.sent_at + dt.timedelta(seconds=give_up)
    assert services.order_reconcile(order_id=exit_order.pk, now=after).status == Status.ATTENTION
    assert requests(sim, "placeorder") == 2  # the buy, and the exit once
    account.refresh_from_db()
    assert account.trading_state == TradingState.REDUCING
    assert Alert.objects.filter(account=account, kind=AlertKind.EXIT_NEEDS_ATTENTION, level="critical").exists()
