"""Exits, cancels, modifies and reconciliation against brokersim (I3, I6, I8)."""

from __future__ import annotations

import threading
from decimal import Decimal

import pytest
from django.db import connection

from accounts.models import AuditEvent, TradingAccount
from accounts.tests.factories import account_on
from trading import services
from trading.models import BrokerBook, Order, Position, Reconciliation
from trading.services import Leg, OrderRefused

Status = Order.Status
pytestmark = pytest.mark.django_db


@pytest.fixture
def acc(alice, paper_clean):
    sim = paper_clean[0]
    account = account_on(sim, owner=alice)
    return account, sim


def place(alice, account, *legs: Leg, poll: bool = True):
    batch = services.orders_create(user=alice, accounts=[account], legs=list(legs))
    services.orders_send_account(account_id=account.pk, batch_id=batch.pk)
    if poll:
        for o in batch.orders.filter(status__in=[Status.ACCEPTED, Status.OPEN]):
            services.order_refresh(order_id=o.pk)
    return batch


def outside_order(sim, symbol: str, quantity: int, **extra) -> None:
    """An order placed straight at the broker (a phone call, OpenAlgo's own UI): not ours."""
    body = {"pricetype": "MARKET", "product": "MIS", **extra}
    sim.ok("placeorder", strategy="manual", symbol=symbol, exchange="NSE", action="BUY", quantity=str(quantity), **body)


def broker_qty(sim, symbol="SBIN", exchange="NSE", product="MIS") -> int:
    return int(sim.ok("openposition", strategy="t", symbol=symbol, exchange=exchange, product=product)["quantity"])


# ------------------------------------------------------------------ reduce-only (I3)
def test_a_second_exit_of_a_closed_position_is_never_sent(alice, acc):
    account, sim = acc
    place(alice, account, Leg("SBIN", "NSE", "BUY", 10))
    pos = Position.objects.get(account=account, symbol="SBIN")
    exit1 = services.position_close(user=alice, position_id=pos.pk)
    services.orders_send_account(account_id=account.pk, batch_id=exit1.pk)
    assert broker_qty(sim) == 0
    # The same exit again (a retry, a second click, a second risk trigger): denied before sending.
    exit2 = place(alice, account, Leg("SBIN", "NSE", "SELL", 10, reduce_only=True))
    o = exit2.orders.get()
    assert o.status == Status.REJECTED and "nothing left to close" in o.last_error
    assert len(sim.ledger()) == 2 and broker_qty(sim) == 0  # 0 flips


def test_an_exit_larger_than_the_position_is_trimmed_never_flips(alice, acc):
    account, sim = acc
    place(alice, account, Leg("SBIN", "NSE", "BUY", 10))
    batch = place(alice, account, Leg("SBIN", "NSE", "SELL", 15, reduce_only=True))
    o = batch.orders.get()
    assert o.quantity == 10 and "trimmed from 15" in o.note
    assert [r["quantity"] for r in sim.ledger()] == [10, 10]
    assert broker_qty(sim) == 0
    assert Position.objects.get(account=account, symbol="SBIN").quantity == 0


def test_an_unreadable_positionbook_holds_the_exit(alice, acc):
    account, sim = acc
    place(alice, account, Leg("SBIN", "NSE", "BUY", 10))
    sim.sim("POST", "fault", {"endpoint": "positionbook", "kind": "status", "value": 500})
    batch = place(alice, account, Leg("SBIN", "NSE", "SELL", 10, reduce_only=True))
    o = batch.orders.get()
    assert o.status == Status.PENDING and "exit held" in o.last_error and o.attempts == 0
    assert len(sim.ledger()) == 1  # nothing sent on a guess
    sim.sim("DELETE", "fault")
    services.orders_send_account(account_id=account.pk, batch_id=batch.pk)
    o.refresh_from_db()
    assert o.status == Status.ACCEPTED and broker_qty(sim) == 0


@pytest.mark.django_db(transaction=True)
def test_two_exits_racing_on_two_workers_close_the_position_once(alice, paper_clean):
    sim = paper_clean[0]
    account = account_on(sim, owner=alice, name="race")
    place(alice, account, Leg("SBIN", "NSE", "BUY", 10))
    sim.sim("POST", "fault", {"endpoint": "placeorder", "kind": "latency", "value": 300})
    batches = [
        services.orders_create(user=alice, accounts=[account], legs=[Leg("SBIN", "NSE", "SELL", 10, reduce_only=True)])
        for _ in range(2)
    ]

    def send(b):
        try:
            services.orders_send_account(account_id=account.pk, batch_id=b.pk)
        finally:
            connection.close()

    threads = [threading.Thread(target=send, args=(b,)) for b in batches]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    sim.sim("DELETE", "fault")
    # One went out; the other was held while the first was in flight, or denied once it was known.
    for _ in range(3):
        for b in batches:
            services.orders_send_account(account_id=account.pk, batch_id=b.pk)
    sells = [r for r in sim.ledger() if r["action"] == "SELL"]
    assert sum(r["quantity"] for r in sells) == 10
    assert broker_qty(sim) == 0
    statuses = sorted(Order.objects.filter(batch__in=batches).values_list("status", flat=True))
    assert statuses == [Status.ACCEPTED, Status.REJECTED]


# ------------------------------------------------------------------ trading states
def test_halted_and_reducing_accounts_take_exits_and_cancels_only(alice, acc):
    account, sim = acc
    place(alice, account, Leg("SBIN", "NSE", "BUY", 2))
    limit = place(alice, account, Leg("INFY", "NSE", "BUY", 1, "LIMIT", price=Decimal("1.00"))).orders.get()
    assert limit.status == Status.OPEN
    for state in ("reducing", "halted"):
        services.account_trading_state_set(user=alice, account_id=account.pk, state=state, reason="drill")
        account.refresh_from_db()
        with pytest.raises(OrderRefused, match="only exits are allowed"):
            services.orders_create(user=alice, accounts=[account], legs=[Leg("SBIN", "NSE", "BUY", 1)])
        with pytest.raises(OrderRefused, match="modifying is refused"):
            services.order_modify(
                order_id=limit.pk, pricetype="LIMIT", quantity=1, price=Decimal("2"), trigger_price=Decimal(0)
            )
    assert AuditEvent.objects.filter(action=AuditEvent.Action.TRADING_STATE, account=account).count() == 2
    assert services.order_cancel(order_id=limit.pk).status == Status.CANCELLED  # cancels always pass
    place(alice, account, Leg("SBIN", "NSE", "SELL", 2, reduce_only=True))  # exits always pass
    assert broker_qty(sim) == 0
    with pytest.raises(OrderRefused, match="unknown trading state"):
        services.account_trading_state_set(user=alice, account_id=account.pk, state="paused")


# ------------------------------------------------------------------ cancel / modify / close
def test_modify_then_cancel_a_limit_order(alice, acc):
    account, sim = acc
    o = place(alice, account, Leg("SBIN", "NSE", "BUY", 5, "LIMIT", price=Decimal("10.00"))).orders.get()
    assert o.status == Status.OPEN
    o = services.order_modify(
        order_id=o.pk, pricetype="LIMIT", quantity=3, price=Decimal("11.50"), trigger_price=Decimal(0)
    )
    row = next(r for r in sim.ok("orderbook")["data"]["orders"] if r["orderid"] == o.broker_orderid)
    assert float(row["price"]) == 11.5 and int(row["quantity"]) == 3
    assert o.quantity == 3 and o.price == Decimal("11.50")
    with pytest.raises(OrderRefused, match="limit price is required"):
        services.order_modify(order_id=o.pk, pricetype="LIMIT", quantity=3, price=Decimal(0), trigger_price=Decimal(0))
    o = services.order_cancel(order_id=o.pk)
    assert o.status == Status.CANCELLED
    with pytest.raises(OrderRefused, match="nothing to change"):
        services.order_cancel(order_id=o.pk)
    assert len(sim.ledger()) == 1


def test_cancel_all_cancels_ours_and_outside_orders(alice, acc):
    account, sim = acc
    batch = place(
        alice,
        account,
        Leg("SBIN", "NSE", "BUY", 1, "LIMIT", price=Decimal("5")),
        Leg("INFY", "NSE", "BUY", 1, "LIMIT", price=Decimal("5")),
    )
    outside_order(sim, "TCS", 1, pricetype="LIMIT", price="5")
    out = services.orders_cancel_all(account_id=account.pk)
    assert out["ok"] and out["cancelled"] == 3
    assert set(batch.orders.values_list("status", flat=True)) == {Status.CANCELLED}
    assert {r["order_status"] for r in sim.ok("orderbook")["data"]["orders"]} == {"cancelled"}


def test_close_account_buys_back_shorts_first_and_ends_flat(alice, acc):
    account, sim = acc
    ce, pe = sim.atm_option("CE", "OTM2"), sim.atm_option("PE", "OTM2")
    place(
        alice,
        account,
        Leg(ce, "NFO", "BUY", 65, product="NRML"),
        Leg(pe, "NFO", "SELL", 65, product="NRML"),
        Leg("SBIN", "NSE", "BUY", 3),
    )
    before = len(sim.ledger())
    batch = services.account_close_all(user=alice, account_id=account.pk)
    assert batch.kind == "exit"
    services.orders_send_account(account_id=account.pk, batch_id=batch.pk)
    exits = sim.ledger()[before:]
    assert [r["action"] for r in exits] == ["BUY", "SELL", "SELL"]  # the short is bought back first
    assert {broker_qty(sim, ce, "NFO", "NRML"), broker_qty(sim, pe, "NFO", "NRML"), broker_qty(sim)} == {0}


def test_close_account_refuses_when_the_broker_cannot_be_read(alice, acc):
    account, sim = acc
    place(alice, account, Leg("SBIN", "NSE", "BUY", 3))
    sim.sim("POST", "fault", {"endpoint": "positionbook", "kind": "status", "value": 502})
    with pytest.raises(OrderRefused, match="unreadable"):
        services.account_close_all(user=alice, account_id=account.pk)
    assert len(sim.ledger()) == 1 and broker_qty(sim) == 3


# ------------------------------------------------------------------ reconciliation (I6, I8)
def test_a_trade_placed_outside_shows_within_one_cycle_and_can_be_repaired(alice, acc):
    account, sim = acc
    place(alice, account, Leg("SBIN", "NSE", "BUY", 4))
    recon = services.account_books_refresh(account_id=account.pk)
    assert recon.state == Reconciliation.State.MATCHED
    outside_order(sim, "INFY", 7)
    recon = services.account_books_refresh(account_id=account.pk)  # one cycle
    assert recon.state == Reconciliation.State.MISMATCH
    assert recon.differences == [
        {"exchange": "NSE", "symbol": "INFY", "product": "MIS", "ours": 0, "broker": 7, "kind": "outside"}
    ]
    assert AuditEvent.objects.filter(action=AuditEvent.Action.RECONCILIATION, account=account).count() == 1
    trades = BrokerBook.objects.get(account=account, kind="trades")
    assert trades.ok and {t["symbol"] for t in trades.rows} == {"SBIN", "INFY"}
    account.refresh_from_db()
    assert Decimal(account.funds["utilised"]) > 0  # funds follow the fills on each cycle
    # The guard: a repair based on what the trader saw is refused once either side has moved.
    with pytest.raises(OrderRefused, match="changed since you looked"):
        services.position_repair(
            user=alice,
            account_id=account.pk,
            exchange="NSE",
            symbol="INFY",
            product="MIS",
            expected_ours=0,
            expected_broker=5,
        )
    pos = services.position_repair(
        user=alice,
        account_id=account.pk,
        exchange="NSE",
        symbol="INFY",
        product="MIS",
        expected_ours=0,
        expected_broker=7,
    )
    assert pos.quantity == 7 and pos.average_price > 0
    assert Reconciliation.objects.get(account=account).state == Reconciliation.State.MATCHED
    assert len(sim.ledger()) == 2  # a repair never places an order


def test_an_unreadable_positionbook_is_unknown_halts_and_places_no_exit(alice, acc):
    account, sim = acc
    place(alice, account, Leg("SBIN", "NSE", "BUY", 4))
    sim.sim("POST", "fault", {"endpoint": "positionbook", "kind": "status", "value": 500})
    recon = services.account_books_refresh(account_id=account.pk)
    assert recon.state == Reconciliation.State.UNKNOWN and recon.differences == []
    account.refresh_from_db()
    assert account.trading_state == TradingAccount.TradingState.HALTED
    assert Position.objects.get(account=account, symbol="SBIN").quantity == 4  # never read as flat
    assert not BrokerBook.objects.get(account=account, kind="positions").ok
    n = len(sim.ledger())
    exit_batch = place(alice, account, Leg("SBIN", "NSE", "SELL", 4, reduce_only=True))
    assert exit_batch.orders.get().status == Status.PENDING  # held, not sent
    assert len(sim.ledger()) == n
    with pytest.raises(OrderRefused, match="halted"):
        services.orders_create(user=alice, accounts=[account], legs=[Leg("SBIN", "NSE", "BUY", 1)])
    # A malformed (200) positionbook counts as unreadable too.
    sim.sim("DELETE", "fault")
    sim.sim("POST", "fault", {"endpoint": "positionbook", "kind": "malformed"})
    assert services.account_books_refresh(account_id=account.pk).state == Reconciliation.State.UNKNOWN
    sim.sim("DELETE", "fault")
    assert services.account_books_refresh(account_id=account.pk).state == Reconciliation.State.MATCHED
    account.refresh_from_db()
    assert account.trading_state == TradingAccount.TradingState.ACTIVE  # resumed by a good read


def test_orders_in_flight_are_not_flagged(alice, acc):
    account, sim = acc
    place(alice, account, Leg("SBIN", "NSE", "BUY", 4), poll=False)  # filled at the broker, not polled yet
    recon = services.account_books_refresh(account_id=account.pk)
    assert recon.state == Reconciliation.State.MATCHED
    assert Position.objects.filter(account=account).count() == 0


def test_a_manual_halt_is_not_lifted_by_reconciliation(alice, acc):
    account, _ = acc
    services.account_trading_state_set(user=alice, account_id=account.pk, state="halted", reason="going on leave")
    services.account_books_refresh(account_id=account.pk)
    account.refresh_from_db()
    assert account.trading_state == "halted" and account.halt_reason == "going on leave"


def test_entries_wait_for_a_good_read_of_the_broker_and_a_halt_stops_queued_entries(alice, acc):
    account, sim = acc
    # First entry since start: no reconciliation yet, and the broker cannot be read → not sent.
    sim.sim("POST", "fault", {"endpoint": "positionbook", "kind": "status", "value": 503})
    batch = place(alice, account, Leg("SBIN", "NSE", "BUY", 2))
    o = batch.orders.get()
    assert o.status == Status.REJECTED and "halted" in o.last_error
    assert sim.ledger() == []
    account.refresh_from_db()
    assert account.trading_state == TradingAccount.TradingState.HALTED
    # A good read comes first, then the entry goes out.
    sim.sim("DELETE", "fault")
    assert services.account_books_refresh(account_id=account.pk).state == Reconciliation.State.MATCHED
    account.refresh_from_db()
    assert account.trading_state == TradingAccount.TradingState.ACTIVE
    place(alice, account, Leg("SBIN", "NSE", "BUY", 2))
    assert len(sim.ledger()) == 1
    # Queued, then the account is halted before its task runs: the entry is refused, the exit sent.
    queued = services.orders_create(
        user=alice,
        accounts=[account],
        legs=[Leg("INFY", "NSE", "BUY", 1), Leg("SBIN", "NSE", "SELL", 2, reduce_only=True)],
    )
    services.account_trading_state_set(user=alice, account_id=account.pk, state="halted", reason="risk off")
    services.orders_send_account(account_id=account.pk, batch_id=queued.pk)
    statuses = dict(queued.orders.values_list("symbol", "status"))
    assert statuses == {"INFY": Status.REJECTED, "SBIN": Status.ACCEPTED}
    assert [r["symbol"] for r in sim.ledger()] == ["SBIN", "SBIN"]
