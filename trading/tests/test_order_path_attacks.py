"""Adversarial tests of the order path (invariants I1-I8), against real brokersim.

Each test is an attack on the rewritten order path that broke an invariant when it was written
(a plain SELL in flight let an exit flip, twice; close everything missed a position a lagging
positionbook hid; a held BUY-to-close let the SELL-to-close go first; an exit given up was never
found and booked) and passes since the fix; the last one held from the start and guards a race.
"""

from __future__ import annotations

import datetime as dt
import threading
import time

import pytest
from django.db import connection
from django.utils import timezone

from accounts.tests.factories import account_on
from brokersim.testing import Broker
from core.testing import wait_for
from trading import services
from trading.models import Order, Position
from trading.services import Leg
from trading.services.outcome import absence_window

Status = Order.Status
UNSETTLED = [Status.PENDING, Status.SENDING]


# ------------------------------------------------------------------ helpers
def arm(sim: Broker, endpoint: str, kind: str, value=None, count: int | None = None) -> None:
    body = {"endpoint": endpoint, "kind": kind, "value": value}
    if count is not None:
        body["count"] = count
    r = sim.http.post("/_sim/fault", json=body)
    assert r.status_code == 200, r.text


def broker_qty(sim: Broker, symbol: str, exchange: str = "NSE", product: str = "MIS") -> int:
    """The live position (openposition is never lagged by positionbook_lag)."""
    return int(sim.ok("openposition", strategy="t", symbol=symbol, exchange=exchange, product=product)["quantity"])


def lagging_qty(sim: Broker, symbol: str) -> int:
    rows = [r for r in sim.ok("positionbook")["data"] if r["symbol"] == symbol and r["product"] == "MIS"]
    return sum(int(r["quantity"]) for r in rows)


def poll_all(account) -> None:
    for o in Order.objects.filter(account=account, status__in=[Status.ACCEPTED, Status.OPEN]):
        services.order_refresh(order_id=o.pk)


def place(alice, account, *legs: Leg, poll: bool = True):
    batch = services.orders_create(user=alice, accounts=[account], legs=list(legs))
    services.orders_send_account(account_id=account.pk, batch_id=batch.pk)
    if poll:
        poll_all(account)
    return batch


def send_until_settled(account, batch, timeout: float = 20.0) -> None:
    def settled() -> bool:
        services.orders_send_account(account_id=account.pk, batch_id=batch.pk)
        return not batch.orders.filter(status__in=UNSETTLED).exists()

    assert wait_for(settled, timeout, step=0.3), list(batch.orders.values_list("quantity", "status", "last_error"))


@pytest.fixture
def acc(alice, paper_clean):
    sim = paper_clean[0]
    return account_on(sim, owner=alice), sim


# ------------------------------------------------------------------ A1. flip: an opposite entry in flight
@pytest.mark.django_db
def test_an_exit_never_flips_over_a_plain_sell_filled_but_not_read_yet(alice, acc):
    """The trader sells the position by hand (a plain SELL, not reduce-only); within the
    positionbook's lag the risk engine (or a Close click) sends its exit. Both views still show
    +10: ours because the SELL's fill is not read yet, the broker's because its book lags. The
    exit must not go out: the position is already flat."""
    account, sim = acc
    place(alice, account, Leg("SBIN", "NSE", "BUY", 10))
    arm(sim, "positionbook", "positionbook_lag", 3)
    assert wait_for(lambda: lagging_qty(sim, "SBIN") == 10, 5)
    manual = place(alice, account, Leg("SBIN", "NSE", "SELL", 10), poll=False)  # filled, not read yet
    assert manual.orders.get().status == Status.ACCEPTED and broker_qty(sim, "SBIN") == 0
    pos = Position.objects.get(account=account, symbol="SBIN")
    close = services.position_close(user=alice, position_id=pos.pk)
    send_until_settled(account, close)
    sim.sim("DELETE", "fault")
    assert broker_qty(sim, "SBIN") == 0, [(r["action"], r["quantity"]) for r in sim.ledger()]  # 0 flips


@pytest.mark.django_db
def test_an_exit_waits_for_a_plain_sell_whose_outcome_is_unknown(alice, acc):
    """Same hole without any lag: the trader's hand SELL loses its reply (the broker places it
    2 s later); a Close sent meanwhile sees +10 in both books, goes, and the late SELL flips."""
    account, sim = acc
    place(alice, account, Leg("SBIN", "NSE", "BUY", 10))
    arm(sim, "placeorder", "late_execute", 2, count=1)
    manual = place(alice, account, Leg("SBIN", "NSE", "SELL", 10), poll=False)
    assert manual.orders.get().status == Status.UNKNOWN
    pos = Position.objects.get(account=account, symbol="SBIN")
    close = services.position_close(user=alice, position_id=pos.pk)
    services.orders_send_account(account_id=account.pk, batch_id=close.pk)
    assert close.orders.get().status == Status.PENDING  # held while the earlier SELL's fate is open
    time.sleep(2.5)  # the hand SELL lands
    # The worker's reconcile finds it (the clock moved past the grace, as the beat would).
    services.order_reconcile(order_id=manual.orders.get().pk, now=timezone.now() + dt.timedelta(seconds=60))
    send_until_settled(account, close)
    assert broker_qty(sim, "SBIN") == 0, [(r["action"], r["quantity"]) for r in sim.ledger()]  # 0 flips


# ------------------------------------------------------------------ A2. lost exit: close everything on a lagging book
@pytest.mark.django_db
def test_close_everything_closes_a_position_the_lagging_positionbook_does_not_show_yet(alice, acc):
    account, sim = acc
    arm(sim, "positionbook", "positionbook_lag", 3)
    place(alice, account, Leg("SBIN", "NSE", "BUY", 10))
    assert Position.objects.get(account=account, symbol="SBIN").quantity == 10  # booked from our fill
    assert lagging_qty(sim, "SBIN") == 0  # the positionbook does not show it yet
    batch = services.account_close_all(user=alice, account_id=account.pk)
    if batch is not None:
        send_until_settled(account, batch)
    sim.sim("DELETE", "fault")
    assert broker_qty(sim, "SBIN") == 0, f"close everything returned {batch}: the 10 stay open"


# ------------------------------------------------------------------ A3. SELL-to-close before BUY-to-close
@pytest.mark.django_db
def test_close_everything_never_sells_the_long_while_the_short_is_still_open(alice, acc):
    """A short leg's first exit is unknown (the connection broke; the broker places it later).
    Close everything then has a BUY-to-close for the short (held: an earlier exit is unknown) and
    a SELL-to-close for the long. The long (the hedge) must not be sold while the short is open."""
    account, sim = acc
    place(alice, account, Leg("SBIN", "NSE", "BUY", 10), Leg("INFY", "NSE", "SELL", 10))
    assert broker_qty(sim, "SBIN") == 10 and broker_qty(sim, "INFY") == -10
    arm(sim, "placeorder", "late_execute", 20, count=1)
    short = Position.objects.get(account=account, symbol="INFY")
    first = services.position_close(user=alice, position_id=short.pk)
    services.orders_send_account(account_id=account.pk, batch_id=first.pk)
    assert first.orders.get().status == Status.UNKNOWN
    before = len(sim.ledger())
    batch = services.account_close_all(user=alice, account_id=account.pk)
    assert sorted(batch.orders.values_list("action", "symbol")) == [("BUY", "INFY"), ("SELL", "SBIN")]
    services.orders_send_account(account_id=account.pk, batch_id=batch.pk)
    sent = [(r["action"], r["symbol"]) for r in sim.ledger()[before:]]
    assert ("SELL", "SBIN") not in sent or broker_qty(sim, "INFY") == 0, (
        f"sent {sent} while INFY is still {broker_qty(sim, 'INFY')}"
    )


# ------------------------------------------------------------------ A4. a fill lost under "needs attention"
@pytest.mark.django_db
def test_an_exit_given_up_while_the_orderbook_was_unreadable_is_still_found_and_booked(alice, acc):
    account, sim = acc
    place(alice, account, Leg("SBIN", "NSE", "BUY", 10))
    arm(sim, "placeorder", "late_execute", 1, count=1)  # the reply is lost, the order placed 1 s later
    pos = Position.objects.get(account=account, symbol="SBIN")
    close = services.position_close(user=alice, position_id=pos.pk)
    services.orders_send_account(account_id=account.pk, batch_id=close.pk)
    o = close.orders.get()
    assert o.status == Status.UNKNOWN
    arm(sim, "orderbook", "status", 500)  # the orderbook cannot be read for a long while
    assert wait_for(lambda: broker_qty(sim, "SBIN") == 0, 5)  # the exit did execute
    later = o.sent_at + absence_window() * 3
    services.order_reconcile(order_id=o.pk, now=later)
    o.refresh_from_db()
    assert o.status == Status.ATTENTION  # given up: a human is told the exit was not placed
    sim.sim("DELETE", "fault")  # the orderbook is readable again
    # Everything that runs periodically afterwards: the sweeper and the poller.
    services.orders_sweep(now=later)
    services.orders_poll_account(account_id=account.pk, limit=10)
    services.order_reconcile(order_id=o.pk, now=later)
    o.refresh_from_db()
    pos.refresh_from_db()
    assert (o.status, pos.quantity) == (Status.COMPLETE, 0), (o.status, o.last_error, pos.quantity)


# ------------------------------------------------------------------ A5. guard: racing exits on two workers
@pytest.mark.django_db(transaction=True)
def test_two_closes_racing_on_two_workers_with_a_lagging_positionbook_exit_once(alice, paper_clean):
    """Regression guard (holds today): a Close click and a risk exit for one position, sent at
    the same moment by two workers while the positionbook lags: exactly one SELL reaches the
    broker and the position ends flat."""
    sim = paper_clean[0]
    account = account_on(sim, owner=alice)
    place(alice, account, Leg("SBIN", "NSE", "BUY", 10))
    arm(sim, "positionbook", "positionbook_lag", 3)
    assert wait_for(lambda: lagging_qty(sim, "SBIN") == 10, 5)
    exit_leg = Leg("SBIN", "NSE", "SELL", 10, reduce_only=True)
    a = services.orders_create(user=alice, accounts=[account], legs=[exit_leg], kind="exit")
    b = services.orders_create(user=alice, accounts=[account], legs=[exit_leg], kind="exit")
    before = len(sim.ledger())

    def run(batch_id):
        try:
            for _ in range(40):  # what re-queued send tasks and the poller do, for ~12 s
                services.orders_send_account(account_id=account.pk, batch_id=batch_id)
                poll_all(account)
                time.sleep(0.3)
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(x.pk,)) for x in (a, b)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    sim.sim("DELETE", "fault")
    sells = [r for r in sim.ledger()[before:] if r["action"] == "SELL"]
    assert [r["quantity"] for r in sells] == [10] and broker_qty(sim, "SBIN") == 0
