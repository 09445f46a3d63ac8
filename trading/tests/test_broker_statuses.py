"""Real brokers' status words and the day's rollover, against brokersim's broker profiles.

1. one status read is never final when it contradicts what we know: a live order listed after a
   rejected one on Zerodha (Kite's carry-over) stays live and fills; a genuine rejection or
   cancel is final only once a second read and the tradebook confirm it; an exit the broker
   rejected is tried again only then;
2. Dhan's PART_TRADED books its partial fill; EXPIRED ends the order cancelled with it booked;
3. an unrecognised status is never final, is read again with a growing pause, logged once;
4. an order-update frame for an order we hold as ended triggers a confirming read, and whatever
   it shows is booked exactly once;
5. the rollover: yesterday's orders are settled with what we know, never left open, never
   resent, never adopted from today's books; an exit in that state goes to a human;
6. exactly-once under faults on the Zerodha-, Dhan- and XTS-like profiles.
"""

from __future__ import annotations

import datetime as dt
import logging
from decimal import Decimal

import pytest
import time_machine
from django.utils import timezone

from accounts.choices import AlertKind
from accounts.models import Alert
from accounts.tests.factories import account_on
from core.calendar import trading_day_start
from trading import services
from trading.models import Order, Position, Reconciliation
from trading.services import Leg
from trading.tests.test_orders import assert_exactly_once, run_until_settled

pytestmark = pytest.mark.django_db
Status = Order.Status
LIVE = (Status.ACCEPTED, Status.OPEN)


@pytest.fixture
def profile(paper_clean):
    """Switch brokersim instances to a broker profile; reset to their own after the test."""
    used = []

    def on(name: str, index: int = 0):
        sim = paper_clean[index]
        sim.sim("POST", "profile", {"profile": name})
        used.append(sim)
        return sim

    yield on
    for sim in used:
        sim.sim("POST", "reset", {"market": True})


@pytest.fixture
def quick(settings):
    settings.ORDER_STATUS_CONFIRM_SECONDS = 2.0
    return settings


def place(user, account, *legs: Leg):
    batch = services.orders_create(user=user, accounts=[account], legs=list(legs))
    services.orders_send_account(account_id=account.pk, batch_id=batch.pk)
    return batch


def later(seconds: float = 5) -> dt.datetime:
    return timezone.now() + dt.timedelta(seconds=seconds)


def ltp(sim, symbol="SBIN") -> float:
    return float(sim.ok("quotes", symbol=symbol, exchange="NSE")["data"]["ltp"])


def broker_qty(sim, symbol="SBIN", product="MIS") -> int:
    return int(sim.ok("openposition", strategy="t", symbol=symbol, exchange="NSE", product=product)["quantity"])


def rejected_outside_order(sim) -> None:
    """An order the broker rejects, placed straight at it (OpenAlgo's own UI): it is the row
    before ours in the broker's orderbook."""
    sim.sim("POST", "fault", {"endpoint": "placeorder", "kind": "reject", "count": 1})
    body = {"pricetype": "MARKET", "product": "MIS", "quantity": "1"}
    sim.ok("placeorder", strategy="manual", symbol="INFY", exchange="NSE", action="BUY", **body)


# ---------------------------------------------------------------- 1. no single read is final
def test_a_live_order_behind_a_rejected_one_stays_live_and_fills_on_zerodha(alice, profile, quick):
    sim = profile("zerodha")
    account = account_on(sim, owner=alice)
    rejected_outside_order(sim)
    limit = Decimal(str(round(ltp(sim) * 0.97, 1)))
    order = place(alice, account, Leg("SBIN", "NSE", "BUY", 3, "LIMIT", price=limit)).orders.get()
    first = services.order_refresh(order_id=order.pk)
    # Kite showed OPEN PENDING; OpenAlgo's mapping carried the rejected row's status over.
    assert first.broker_status.lower() == "rejected"
    assert first.status in LIVE and first.doubtful_reads == 1, first.last_error
    assert services.order_refresh(order_id=order.pk).status in LIVE  # too soon to confirm anything
    second = services.order_refresh(order_id=order.pk, now=later())
    assert second.status in LIVE and second.broker_status == "open" and second.doubtful_reads == 0
    sim.sim("POST", "price", {"symbol": "SBIN", "exchange": "NSE", "ltp": float(limit) - 1})
    done = services.order_refresh(order_id=order.pk, now=later(10))
    assert (done.status, done.filled_quantity, done.average_price) == (Status.COMPLETE, 3, limit)
    assert Position.objects.get(account=account, symbol="SBIN").quantity == 3 == broker_qty(sim)


def test_a_genuine_rejection_is_final_after_its_confirming_read(alice, profile, quick):
    sim = profile("zerodha")
    account = account_on(sim, owner=alice)
    sim.sim("POST", "fault", {"endpoint": "placeorder", "kind": "reject", "value": "RMS: margin", "count": 1})
    order = place(alice, account, Leg("SBIN", "NSE", "BUY", 1)).orders.get()
    assert order.status == Status.ACCEPTED  # the broker took it, then rejected it
    assert services.order_refresh(order_id=order.pk).status in LIVE
    assert services.order_refresh(order_id=order.pk, now=later(1)).status in LIVE  # not "a little later" yet
    final = services.order_refresh(order_id=order.pk, now=later())
    assert (final.status, final.filled_quantity) == (Status.REJECTED, 0)
    assert not Position.objects.filter(account=account, quantity__gt=0).exists()


def test_a_rejected_exit_is_tried_again_only_once_the_rejection_is_confirmed(alice, paper_clean, quick):
    sim = paper_clean[0]
    account = account_on(sim, owner=alice)
    buy = place(alice, account, Leg("SBIN", "NSE", "BUY", 2)).orders.get()
    services.order_refresh(order_id=buy.pk)
    sim.sim("POST", "fault", {"endpoint": "placeorder", "kind": "reject", "value": "RMS: exit blocked", "count": 1})
    position = Position.objects.get(account=account, symbol="SBIN")
    exit_order = services.position_close(user=alice, position_id=position.pk).orders.get()
    services.orders_send_account(account_id=account.pk)
    exit_order.refresh_from_db()
    assert exit_order.status == Status.ACCEPTED
    once = services.order_refresh(order_id=exit_order.pk)
    assert once.status in LIVE and once.broker_orderid  # one "rejected" read: not the end of it yet
    confirmed = services.order_refresh(order_id=exit_order.pk, now=later())
    assert confirmed.status == Status.UNKNOWN and "exit attempt 1" in confirmed.last_error
    assert len([r for r in sim.ledger() if r["strategy"] == exit_order.tag]) == 1


def test_a_cancel_we_asked_for_is_final_at_once(alice, paper_clean, quick):
    sim = paper_clean[0]
    account = account_on(sim, owner=alice)
    limit = Decimal(str(round(ltp(sim) * 0.97, 1)))
    order = place(alice, account, Leg("SBIN", "NSE", "BUY", 2, "LIMIT", price=limit)).orders.get()
    assert services.order_cancel(order_id=order.pk).status == Status.CANCELLED


# ---------------------------------------------------------------- 2. Dhan
def partly_filled_on(alice, sim, account) -> Order:
    """BUY 10 SBIN at market that fills 5 and rests (brokersim partial_fill)."""
    sim.sim("POST", "fault", {"endpoint": "placeorder", "kind": "partial_fill", "value": 0.5, "count": 1})
    return place(alice, account, Leg("SBIN", "NSE", "BUY", 10)).orders.get()


def test_a_part_traded_order_on_dhan_books_its_fill_and_ends_with_it(alice, profile, quick):
    sim = profile("dhan")
    account = account_on(sim, owner=alice)
    order = partly_filled_on(alice, sim, account)
    assert services.order_refresh(order_id=order.pk).broker_status == "TRANSIT"
    o = services.order_refresh(order_id=order.pk)
    # PART_TRADED, and the live orderstatus carries no filled quantity: the tradebook has it.
    assert (o.status, o.broker_status, o.filled_quantity) == (Status.OPEN, "PART_TRADED", 5)
    assert Position.objects.get(account=account, symbol="SBIN").quantity == 5
    o = services.order_cancel(order_id=o.pk)
    assert (o.status, o.filled_quantity) == (Status.CANCELLED, 5)
    [row] = [r for r in sim.ledger() if r["orderid"] == o.broker_orderid]
    assert o.average_price == Decimal(str(row["average_price"]))
    assert Position.objects.get(account=account, symbol="SBIN").quantity == 5 == broker_qty(sim)


def test_an_expired_order_on_dhan_ends_cancelled_with_its_partial_fill(alice, profile, quick):
    sim = profile("dhan")
    account = account_on(sim, owner=alice)
    order = partly_filled_on(alice, sim, account)
    # The broker expires the unfilled rest (end of day) and Dhan's order stream says so, in lower case.
    sim.ok("cancelorder", orderid=order.broker_orderid, strategy=order.tag)
    frame = {"orderid": order.broker_orderid, "order_status": "expired"}
    services.order_apply_update(account_id=account.pk, data=frame)
    order.refresh_from_db()
    assert order.status in LIVE and order.filled_quantity == 5  # the fill is booked; the end awaits its confirmation
    services.orders_poll_account(account_id=account.pk, now=later())  # Dhan's REST says CANCELLED
    order.refresh_from_db()
    assert (order.status, order.filled_quantity) == (Status.CANCELLED, 5)
    assert Position.objects.get(account=account, symbol="SBIN").quantity == 5 == broker_qty(sim)


# ---------------------------------------------------------------- 3. unrecognised
def test_an_unrecognised_status_is_never_final_and_read_again_with_a_growing_pause(alice, paper_clean, caplog):
    sim = paper_clean[0]
    account = account_on(sim, owner=alice)
    limit = Decimal(str(round(ltp(sim) * 0.97, 1)))
    order = place(alice, account, Leg("SBIN", "NSE", "BUY", 2, "LIMIT", price=limit)).orders.get()
    frame = {"orderid": order.broker_orderid, "order_status": "unknown"}  # Fyers, for a code it does not map
    with caplog.at_level(logging.WARNING, logger="trading.services.fills"):
        services.order_apply_update(account_id=account.pk, data=frame)
        services.order_apply_update(account_id=account.pk, data=frame)
    order.refresh_from_db()
    assert order.status in LIVE and order.doubtful_reads == 2
    pause = (order.poll_after - timezone.now()).total_seconds()
    assert 2.0 < pause <= 4.0  # doubled on the second read
    assert len([r for r in caplog.records if "not recognised" in r.getMessage()]) == 1  # logged once
    assert services.orders_poll_account(account_id=account.pk) == 0  # not read before its pause is over
    assert services.orders_poll_account(account_id=account.pk, now=later(5)) == 1
    order.refresh_from_db()
    assert order.status in LIVE and order.broker_status == "open" and order.doubtful_reads == 0
    assert order.poll_after is None


def test_an_unrecognised_status_of_a_filled_order_is_settled_from_the_tradebook(alice, paper_clean):
    sim = paper_clean[0]
    account = account_on(sim, owner=alice)
    order = place(alice, account, Leg("SBIN", "NSE", "BUY", 2)).orders.get()
    services.order_apply_update(account_id=account.pk, data={"orderid": order.broker_orderid, "order_status": "CLOSED"})
    order.refresh_from_db()
    assert (order.status, order.filled_quantity) == (Status.COMPLETE, 2)
    assert Position.objects.get(account=account, symbol="SBIN").quantity == 2


# ---------------------------------------------------------------- 4. frames for ended orders
def test_a_frame_for_an_order_we_hold_as_rejected_reopens_it_when_the_broker_has_it_live(alice, profile):
    sim = profile("zerodha")
    account = account_on(sim, owner=alice)
    limit = Decimal(str(round(ltp(sim) * 0.97, 1)))
    order = place(alice, account, Leg("SBIN", "NSE", "BUY", 3, "LIMIT", price=limit)).orders.get()
    # As the old code left it: one carried-over "rejected" read taken as final.
    Order.objects.filter(pk=order.pk).update(status=Status.REJECTED, broker_status="REJECTED")
    sim.sim("POST", "price", {"symbol": "SBIN", "exchange": "NSE", "ltp": float(limit) - 1})
    frame = {"orderid": order.broker_orderid, "order_status": "COMPLETE", "filled_quantity": 3}
    for _ in range(2):  # the frame, and its replay: booked once
        services.order_apply_update(account_id=account.pk, data=frame)
    order.refresh_from_db()
    assert (order.status, order.filled_quantity, order.average_price) == (Status.COMPLETE, 3, limit)
    assert Position.objects.get(account=account, symbol="SBIN").quantity == 3 == broker_qty(sim)


def test_a_frame_for_a_cancelled_order_books_fills_the_tradebook_shows_once(alice, paper_clean):
    sim = paper_clean[0]
    account = account_on(sim, owner=alice)
    order = partly_filled_on(alice, sim, account)
    sim.ok("cancelorder", orderid=order.broker_orderid, strategy=order.tag)
    # Held as cancelled with nothing filled (a fill the broker reported late).
    Order.objects.filter(pk=order.pk).update(status=Status.CANCELLED, broker_status="cancelled")
    frame = {"orderid": order.broker_orderid, "order_status": "cancelled"}
    for _ in range(3):
        services.order_apply_update(account_id=account.pk, data=frame)
    order.refresh_from_db()
    assert (order.status, order.filled_quantity) == (Status.CANCELLED, 5)
    assert Position.objects.get(account=account, symbol="SBIN").quantity == 5 == broker_qty(sim)


# ---------------------------------------------------------------- 5. rollover
def next_morning() -> dt.datetime:
    """04:00 IST on the broker's next day."""
    return trading_day_start(timezone.now()) + dt.timedelta(days=1, hours=1)


def new_day(sim):
    """The broker's books roll over: its orders are gone (orderstatus answers 404)."""
    sim.sim("POST", "reset")
    return time_machine.travel(next_morning(), tick=True)


def test_yesterdays_open_order_is_settled_with_its_fills_never_left_open(alice, paper_clean):
    sim = paper_clean[0]
    account = account_on(sim, owner=alice)
    order = partly_filled_on(alice, sim, account)
    assert services.order_refresh(order_id=order.pk).filled_quantity == 5
    with new_day(sim):
        services.orders_poll_account(account_id=account.pk)
        order.refresh_from_db()
        assert (order.status, order.filled_quantity) == (Status.CANCELLED, 5)
        assert order.broker_status == "expired at rollover"
        assert services.orders_poll_fan_out() == 0  # nothing left to poll
    assert sim.ledger() == []  # nothing sent on the new day


def test_yesterdays_open_exit_goes_to_a_human(alice, paper_clean):
    sim = paper_clean[0]
    account = account_on(sim, owner=alice)
    place(alice, account, Leg("SBIN", "NSE", "BUY", 2))
    services.orders_poll_account(account_id=account.pk)
    limit = Decimal(str(round(ltp(sim) * 1.05, 1)))
    exit_order = place(alice, account, Leg("SBIN", "NSE", "SELL", 2, "LIMIT", price=limit, reduce_only=True))
    exit_order = exit_order.orders.get()
    assert services.order_refresh(order_id=exit_order.pk).status in LIVE
    with new_day(sim):
        services.order_refresh(order_id=exit_order.pk)
        exit_order.refresh_from_db()
        assert exit_order.status == Status.ATTENTION and "rolled over" in exit_order.last_error
        assert Alert.objects.filter(account=account, kind=AlertKind.EXIT_NEEDS_ATTENTION).count() == 1
    assert sim.ledger() == []


@pytest.mark.parametrize("reduce_only", [False, True])
def test_yesterdays_unknown_order_is_never_resent_or_adopted_on_the_new_day(alice, paper_clean, reduce_only):
    sim = paper_clean[0]
    account = account_on(sim, owner=alice)
    if reduce_only:
        place(alice, account, Leg("SBIN", "NSE", "BUY", 2))
        services.orders_poll_account(account_id=account.pk)
    sim.sim("POST", "fault", {"endpoint": "placeorder", "kind": "drop_after_execute", "count": 1})
    order = place(alice, account, Leg("SBIN", "NSE", "SELL" if reduce_only else "BUY", 2, reduce_only=reduce_only))
    order = order.orders.get()
    assert order.status == Status.UNKNOWN
    with new_day(sim):
        # Today's book holds an identical order placed outside: never taken for yesterday's.
        body = {"pricetype": "MARKET", "product": "MIS", "quantity": "2", "action": order.action}
        sim.ok("placeorder", strategy="manual", symbol="SBIN", exchange="NSE", **body)
        for _ in range(5):
            services.order_reconcile(order_id=order.pk, now=timezone.now() + dt.timedelta(minutes=5))
            services.orders_sweep(now=timezone.now() + dt.timedelta(minutes=5))
            services.orders_send_account(account_id=account.pk)
        order.refresh_from_db()
        assert order.broker_orderid is None
        if reduce_only:
            assert order.status == Status.ATTENTION and "rolled over" in order.last_error
        else:
            assert order.status == Status.CANCELLED and "rolled over" in order.last_error
    assert [r["strategy"] for r in sim.ledger()] == ["manual"]  # 0 resent


def test_an_order_queued_again_yesterday_is_not_sent_on_the_new_day(alice, paper_clean):
    sim = paper_clean[0]
    account = account_on(sim, owner=alice)
    sim.sim("POST", "fault", {"endpoint": "placeorder", "kind": "status", "value": 429, "count": 1})
    order = place(alice, account, Leg("SBIN", "NSE", "BUY", 2)).orders.get()
    assert order.status == Status.PENDING and order.sent_at  # throttled, absent from the orderbook: queued again
    with new_day(sim):
        services.orders_sweep()
        services.orders_send_account(account_id=account.pk)
        order.refresh_from_db()
        assert order.status == Status.CANCELLED and "rolled over" in order.last_error
    assert sim.ledger() == []


# ---------------------------------------------------------------- 6. exactly-once per profile
PROFILE_FAULTS = {
    "500": [{"kind": "status", "value": 500}],
    "drop_after_execute": [{"kind": "drop_after_execute"}],
    "no_orderid": [{"kind": "no_orderid"}],
}


@pytest.mark.parametrize("case", list(PROFILE_FAULTS))
@pytest.mark.parametrize("broker", ["zerodha", "dhan", "xts"])
def test_exactly_once_on_real_brokers_profiles(alice, profile, settings, broker, case):
    settings.ORDER_STATUS_CONFIRM_SECONDS = 0.0
    sims = [profile(broker, i) for i in range(2)]
    pairs = [(account_on(sim, owner=alice), sim) for sim in sims]
    for _, sim in pairs:
        for fault in PROFILE_FAULTS[case]:
            sim.sim("POST", "fault", {"endpoint": "placeorder", "count": 2, **fault})
    legs = [Leg("SBIN", "NSE", "BUY", 4), Leg("INFY", "NSE", "BUY", 2), Leg("TCS", "NSE", "SELL", 2)]
    batch = services.orders_create(user=alice, accounts=[a for a, _ in pairs], legs=legs)
    run_until_settled(batch)
    assert_exactly_once(batch, pairs)
    for _, sim in pairs:
        sim.sim("DELETE", "fault")
    for _ in range(4):
        for o in batch.orders.filter(status__in=LIVE):
            services.order_refresh(order_id=o.pk, now=later())
    for account, sim in pairs:
        ledger = {r["orderid"]: r for r in sim.ledger()}
        for o in batch.orders.filter(account=account):
            row = ledger[o.broker_orderid]
            assert (o.status, o.filled_quantity) == (row["status"], row["filled_quantity"]), (o.symbol, o.broker_status)
            assert o.average_price == Decimal(str(row["average_price"]))
        assert services.account_books_refresh(account_id=account.pk).state == Reconciliation.State.MATCHED
