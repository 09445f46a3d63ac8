"""Attacks on issue 18 (real brokers' quirks): interleavings, broker answers and inputs that
try to break I1–I8 — a duplicate order, a wrong exit (one that flips a position or goes twice),
a missed exit, an order left open forever. Each attack that broke main has its fix; each that
held stays as a test that shows it holds.
"""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from accounts.tests.factories import account_on
from trading import services
from trading.models import Order, Position
from trading.services import Leg

pytestmark = pytest.mark.django_db
Status = Order.Status
LIVE = (Status.ACCEPTED, Status.OPEN)


@pytest.fixture
def profile(paper_clean):
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
    settings.EXIT_RETRY_SECONDS = 10.0
    return settings


def place(user, account, *legs: Leg):
    batch = services.orders_create(user=user, accounts=[account], legs=list(legs))
    services.orders_send_account(account_id=account.pk, batch_id=batch.pk)
    return batch


def later(seconds: float) -> dt.datetime:
    return timezone.now() + dt.timedelta(seconds=seconds)


def ltp(sim, symbol="SBIN") -> float:
    return float(sim.ok("quotes", symbol=symbol, exchange="NSE")["data"]["ltp"])


def broker_qty(sim, symbol="SBIN", product="MIS") -> int:
    return int(sim.ok("openposition", strategy="t", symbol=symbol, exchange="NSE", product=product)["quantity"])


def rejected_outside_order(sim) -> None:
    """A genuinely rejected order, placed at the broker by hand: the row before ours."""
    sim.sim("POST", "fault", {"endpoint": "placeorder", "kind": "reject", "count": 1})
    body = {"pricetype": "MARKET", "product": "MIS", "quantity": "1"}
    sim.ok("placeorder", strategy="manual", symbol="INFY", exchange="NSE", action="BUY", **body)


def long_position(alice, sim, account, qty=2) -> Position:
    buy = place(alice, account, Leg("SBIN", "NSE", "BUY", qty)).orders.get()
    services.order_refresh(order_id=buy.pk)
    pos = Position.objects.get(account=account, symbol="SBIN")
    assert pos.quantity == qty == broker_qty(sim)
    return pos


def drain_pending_reads(sim, n=10) -> None:
    """The broker's transient state ends: the resting order reaches the exchange and matches."""
    for _ in range(n):
        sim.ok("orderbook")
    sim.sim("POST", "price", {"symbol": "SBIN", "exchange": "NSE", "ltp": ltp(sim)})


def exit_sells(sim, tag: str) -> list[dict]:
    return [r for r in sim.ledger() if r["strategy"] == tag and r["action"] == "SELL"]


# ---------------------------------------------------------------- A1. the known lead (Kite carry-over)
def test_a1_a_live_exit_reading_rejected_twice_on_zerodha_is_not_sent_again(alice, profile, quick):
    """Broke on main: an exit still OPEN PENDING (AMO, exchange slow) behind a genuinely rejected
    row reads "rejected" on both reads (OpenAlgo's Zerodha mapping carries the row before it
    over); the tradebook shows nothing yet, so the rejection was "confirmed", the attempt
    forgotten, and the exit sent again: two exits filled, the long flipped to short."""
    sim = profile("zerodha")
    account = account_on(sim, owner=alice)
    pos = long_position(alice, sim, account)
    rejected_outside_order(sim)
    sim.sim("POST", "fault", {"endpoint": "placeorder", "kind": "pending_reads", "value": 6, "count": 1})
    exit_order = services.position_close(user=alice, position_id=pos.pk).orders.get()
    services.orders_send_account(account_id=account.pk)
    exit_order.refresh_from_db()
    assert exit_order.status == Status.ACCEPTED
    first_id = exit_order.broker_orderid
    services.order_refresh(order_id=exit_order.pk)
    services.order_refresh(order_id=exit_order.pk, now=later(5))
    services.order_reconcile(order_id=exit_order.pk, now=later(20))  # main: "absent", sent again
    services.orders_send_account(account_id=account.pk)
    cycle(sim, account, exit_order, range(30, 130, 10))
    exit_order.refresh_from_db()
    sells = exit_sells(sim, exit_order.tag)
    assert broker_qty(sim) == 0, sells  # flat, not flipped
    assert sum(r["filled_quantity"] for r in sells) == 2, sells  # one exit's worth filled, never two
    assert [r["status"] for r in sells if r["orderid"] == first_id] == ["cancelled"]  # the live attempt, cancelled
    assert exit_order.status == Status.COMPLETE, exit_order.last_error
    assert Position.objects.get(pk=pos.pk).quantity == 0


def cycle(sim, account, order, seconds) -> None:
    """What the beat does, at `seconds` from now: the transient state ends at the broker, then
    poll, reconcile and send, in turn."""
    drain_pending_reads(sim)
    for s in seconds:
        services.orders_poll_account(account_id=account.pk, now=later(s))
        services.order_reconcile(order_id=order.pk, now=later(s))
        services.orders_send_account(account_id=account.pk)


def test_a1b_a_genuinely_rejected_exit_on_zerodha_is_still_tried_again(alice, profile, quick):
    """The fix must not turn a real rejection into a missed exit: the cancel is refused (the
    order is terminal) and the tradebook shows nothing, so the attempt is dead and retried."""
    sim = profile("zerodha")
    account = account_on(sim, owner=alice)
    pos = long_position(alice, sim, account)
    sim.sim("POST", "fault", {"endpoint": "placeorder", "kind": "reject", "value": "RMS: blocked", "count": 1})
    exit_order = services.position_close(user=alice, position_id=pos.pk).orders.get()
    services.orders_send_account(account_id=account.pk)
    exit_order.refresh_from_db()
    services.order_refresh(order_id=exit_order.pk)
    failed = services.order_refresh(order_id=exit_order.pk, now=later(5))
    assert failed.status == Status.UNKNOWN and "exit attempt 1" in failed.last_error, failed.last_error
    services.order_reconcile(order_id=exit_order.pk, now=later(20))
    services.orders_send_account(account_id=account.pk)
    exit_order.refresh_from_db()
    services.order_refresh(order_id=exit_order.pk, now=later(21))
    exit_order.refresh_from_db()
    assert exit_order.status == Status.COMPLETE, exit_order.last_error
    assert len(exit_sells(sim, exit_order.tag)) == 2 and broker_qty(sim) == 0


def test_a2_an_unknown_exit_whose_live_row_reads_rejected_on_zerodha_is_adopted_not_resent(alice, profile, quick):
    """Broke on main: the exit's reply was lost (drop after execute) and its row, still pending,
    reads "rejected" behind a rejected row; the orderbook match skipped every "rejected" row of
    an exit, so three reads proved it "absent" and it was sent again: two exits, a flip."""
    sim = profile("zerodha")
    account = account_on(sim, owner=alice)
    pos = long_position(alice, sim, account)
    rejected_outside_order(sim)
    sim.sim("POST", "fault", {"endpoint": "placeorder", "kind": "pending_reads", "value": 8, "count": 1})
    sim.sim("POST", "fault", {"endpoint": "placeorder", "kind": "drop_after_execute", "count": 1})
    exit_order = services.position_close(user=alice, position_id=pos.pk).orders.get()
    services.orders_send_account(account_id=account.pk)
    exit_order.refresh_from_db()
    assert exit_order.status == Status.UNKNOWN
    for s in (70, 100, 130, 160):
        services.order_reconcile(order_id=exit_order.pk, now=later(s))
        services.orders_send_account(account_id=account.pk)
    cycle(sim, account, exit_order, range(170, 300, 10))
    exit_order.refresh_from_db()
    sells = exit_sells(sim, exit_order.tag)
    assert broker_qty(sim) == 0, sells
    assert sum(r["filled_quantity"] for r in sells) == 2, sells
    assert exit_order.status == Status.COMPLETE, exit_order.last_error
    assert Position.objects.get(pk=pos.pk).quantity == 0


def test_a3_a_live_entry_reading_rejected_twice_on_zerodha_does_not_end_rejected(alice, profile, quick):
    """An entry still pending behind a rejected row reads "rejected" twice: on main it ended
    REJECTED, then filled at the broker unseen (our books flat, the broker long)."""
    sim = profile("zerodha")
    account = account_on(sim, owner=alice)
    rejected_outside_order(sim)
    sim.sim("POST", "fault", {"endpoint": "placeorder", "kind": "pending_reads", "value": 4, "count": 1})
    order = place(alice, account, Leg("SBIN", "NSE", "BUY", 2)).orders.get()
    services.order_refresh(order_id=order.pk)
    services.order_refresh(order_id=order.pk, now=later(5))
    cycle(sim, account, order, range(10, 60, 10))
    order.refresh_from_db()
    held = Position.objects.filter(account=account, symbol="SBIN").values_list("quantity", flat=True).first() or 0
    assert held == broker_qty(sim), (order.status, order.last_error)  # our books equal the broker's
    assert order.status in (Status.COMPLETE, Status.CANCELLED), order.last_error
    assert order.filled_quantity == held


@pytest.mark.parametrize(
    ("message", "ended"),
    [
        ("Cannot cancel order in rejected status", True),  # brokersim / OpenAlgo sandbox
        ("Order cannot be cancelled as it is already cancelled", True),
        ("Order is already completed", True),
        ("Order cannot be cancelled as it is being processed. Try later.", False),  # Kite, OPEN PENDING
        ("Cannot cancel order in open status", False),
        ("Order cannot be cancelled", False),  # names no end: no proof
        ("Order 123 not found", False),
        ("", False),
        (None, False),
    ],
)
def test_only_a_cancel_refusal_naming_an_end_proves_an_attempt_dead(message, ended):
    from openalgo_client.orderstatus import cancel_refusal_says_ended

    assert cancel_refusal_says_ended(message) is ended
