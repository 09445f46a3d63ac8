"""Empty is not flat when we know better (issue 18, point 3), and the broker's own MIS square-off
(point 5): the pure rules first, then live against brokersim's Angel-like profile, whose book
reads answer a broker failure with 200 and an empty book."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from trading import brokerbooks as bb


# ------------------------------------------------------------------ the pure rules
def pos(symbol: str, qty: int, product: str = "MIS", exchange: str = "NSE") -> bb.BrokerPosition:
    return bb.BrokerPosition(exchange, symbol, product, qty, Decimal("100"))


def book(*ps: bb.BrokerPosition) -> dict:
    return {p.key: p for p in ps}


SBIN, INFY = ("NSE", "SBIN", "MIS"), ("NSE", "INFY", "MIS")


@pytest.mark.parametrize(
    ("rows", "accepted_today", "unknown"),
    [
        ([], [], False),  # nothing known: an empty book may well be empty
        ([], ["11"], True),  # Angel's failure answered as []: unknown, never "absent"
        ([{"orderid": "11", "order_status": "complete"}], ["11"], False),
        ([{"orderid": "11"}], ["11", "12"], True),  # a row we know the broker accepted is missing
        ([{"orderid": 11}, {"orderid": "12"}, {"orderid": "99"}], ["11", "12"], False),  # ids as numbers too
        ([], ["", None], False),  # no id, nothing known
    ],
)
def test_an_orderbook_without_orders_accepted_today_is_unknown(rows, accepted_today, unknown):
    if unknown:
        with pytest.raises(bb.BookUnknown):
            bb.check_orderbook(rows, accepted_today)
    else:
        bb.check_orderbook(rows, accepted_today)


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        ({"orders": [{"orderid": "1"}], "statistics": {}}, ["1"]),
        ([{"orderid": "1"}, "junk"], ["1"]),  # the bare list an error answered as empty gives
        (None, []),
        ({"orders": None}, []),
    ],
)
def test_orderbook_rows(data, expected):
    assert [r["orderid"] for r in bb.orderbook_rows(data)] == expected


def test_an_orderbook_that_is_not_a_list_is_unreadable():
    with pytest.raises(bb.BookUnreadable):
        bb.orderbook_rows("Not_Ok")


@pytest.mark.parametrize(
    ("positions", "held", "unknown"),
    [
        (book(), {}, False),  # flat and nothing held: flat
        (book(), {SBIN: 0}, False),  # what we hold at 0 need not be listed
        (book(), {SBIN: 10}, True),  # empty while we hold 10: unknown, not flat
        (book(pos("SBIN", 0)), {SBIN: 10}, False),  # listed at 0: readable (closed outside: a difference)
        (book(pos("SBIN", 10)), {SBIN: 10, INFY: -5}, True),  # one held instrument missing
        (book(pos("SBIN", 10), pos("INFY", 0)), {SBIN: 10, INFY: -5}, False),
        (book(pos("TCS", 3)), {}, False),  # the broker holds more than we know: a difference, not unknown
    ],
)
def test_a_positionbook_without_positions_we_hold_is_unknown(positions, held, unknown):
    if unknown:
        with pytest.raises(bb.BookUnknown, match="positionbook"):
            bb.check_positionbook(positions, held)
    else:
        bb.check_positionbook(positions, held)


@pytest.mark.parametrize(
    ("trades", "filled_today", "unknown"),
    [
        ([], [], False),
        ([], ["7"], True),
        ([{"orderid": "7"}], ["7"], False),
        ([{"orderid": "7"}], ["7", "8"], True),
    ],
)
def test_a_tradebook_without_fills_we_know_is_unknown(trades, filled_today, unknown):
    if unknown:
        with pytest.raises(bb.BookUnknown, match="tradebook"):
            bb.check_tradebook(trades, filled_today)
    else:
        bb.check_tradebook(trades, filled_today)


def test_unknown_is_handled_as_unreadable():
    assert issubclass(bb.BookUnknown, bb.BookUnreadable)


@pytest.mark.parametrize(
    ("broker", "ours", "expected"),
    [
        (None, None, bb.ExitCheck(0, False, 0, None)),  # never ours, not listed: nothing to close
        (None, 0, bb.ExitCheck(0, False, 0, 0)),  # ours closed, not listed: nothing to close
        (None, 10, "unknown"),  # ours open, not listed: unknown, never denied as flat
        (None, -10, "unknown"),
        (0, 10, bb.ExitCheck(0, True, 0, 10)),  # listed at 0: the views disagree, held (as before)
        (10, 10, bb.ExitCheck(10, False, 10, 10)),
    ],
)
def test_exit_check_never_reads_a_missing_row_as_flat_while_we_hold_it(broker, ours, expected):
    action = "BUY" if ours is not None and ours < 0 else "SELL"
    if expected == "unknown":
        with pytest.raises(bb.BookUnknown):
            bb.exit_check(action, 10, broker, ours, [], settled=True)
    else:
        assert bb.exit_check(action, 10, broker, ours, [], settled=False) == expected


def diff(symbol: str, ours: int, broker: int = 0, product: str = "MIS", exchange: str = "NSE") -> bb.Difference:
    return bb.Difference(exchange, symbol, product, ours, broker)


def trade(symbol: str, action: str, qty: int, price: str = "100", orderid: str = "B1", **extra) -> dict:
    return {
        "orderid": orderid,
        "symbol": symbol,
        "exchange": extra.pop("exchange", "NSE"),
        "product": extra.pop("product", "MIS"),
        "action": action,
        "quantity": qty,
        "price": price,
        "strategy": extra.pop("strategy", ""),
    }


LATE, EARLY = dt.time(15, 16), dt.time(15, 14)


@pytest.mark.parametrize(
    ("diffs", "trades", "when", "expected"),
    [
        # The broker sold our 10 long itself after 15:15: adopted as its fill.
        ([diff("SBIN", 10)], [trade("SBIN", "SELL", 10, "101.5")], LATE, [("SBIN", "SELL", 10, "101.5")]),
        # A short bought back in two trades of the broker's: one fill at their average.
        (
            [diff("SBIN", -10)],
            [trade("SBIN", "BUY", 4, "100", "B1"), trade("SBIN", "BUY", 6, "105", "B2")],
            LATE,
            [("SBIN", "BUY", 10, "103")],
        ),
        ([diff("SBIN", 10)], [trade("SBIN", "SELL", 10)], EARLY, []),  # before the square-off time
        ([diff("SBIN", 10)], [trade("SBIN", "SELL", 6)], LATE, []),  # not the exact quantity
        ([diff("SBIN", 10)], [trade("SBIN", "SELL", 12)], LATE, []),
        ([diff("SBIN", 10, product="NRML")], [trade("SBIN", "SELL", 10, product="NRML")], LATE, []),  # not MIS
        ([diff("SBIN", 10, broker=4)], [trade("SBIN", "SELL", 6)], LATE, []),  # broker not at 0
        ([diff("SBIN", 10)], [trade("SBIN", "SELL", 10, orderid="OURS")], LATE, []),  # our own exit
        ([diff("SBIN", 10)], [trade("SBIN", "SELL", 10, strategy="am7")], LATE, []),  # tagged as ours
        (  # a trade on the opening side too: not a plain square-off
            [diff("SBIN", 10)],
            [trade("SBIN", "SELL", 12, orderid="B1"), trade("SBIN", "BUY", 2, orderid="B2")],
            LATE,
            [],
        ),
        ([diff("SBIN", 10)], [trade("INFY", "SELL", 10)], LATE, []),  # another instrument
        ([diff("GOLD", 1, exchange="MCX")], [trade("GOLD", "SELL", 1, exchange="MCX")], LATE, []),  # MCX: 23:30
        (
            [diff("GOLD", 1, exchange="MCX")],
            [trade("GOLD", "SELL", 1, exchange="MCX")],
            dt.time(23, 31),
            [("GOLD", "SELL", 1, "100")],
        ),
    ],
)
def test_the_broker_square_off_is_recognised_only_when_it_is_exactly_that(diffs, trades, when, expected):
    got = bb.broker_square_offs(diffs, trades, our_orderids={"OURS"}, our_tags={"am7"}, ist_time=when)
    assert [(s.symbol, s.action, s.quantity, s.price) for s in got] == [
        (sym, a, q, Decimal(p)) for sym, a, q, p in expected
    ]


# ------------------------------------------------------------------ live, against the Angel-like profile
# brokersim's `angel` profile answers a failed book read (here a 500 armed on the book) with
# 200 {"status": "success", "data": []}, as OpenAlgo in front of Angel does.
from accounts.choices import AlertKind, AlertLevel  # noqa: E402
from accounts.models import Alert, AuditEvent, TradingAccount  # noqa: E402
from accounts.tests.factories import account_on  # noqa: E402
from core.calendar import IST  # noqa: E402
from trading import services  # noqa: E402
from trading.models import BrokerBook, Order, Position, Reconciliation  # noqa: E402
from trading.services import Leg  # noqa: E402
from trading.services.outcome import day_start, reads_needed  # noqa: E402

Status = Order.Status


@pytest.fixture
def acc(alice, paper_clean):
    """An account on a broker answering like Angel; the profile is reset afterwards."""
    sim = paper_clean[0]
    assert sim.sim("POST", "profile", {"profile": "angel"})["profile"] == "angel"
    yield account_on(sim, owner=alice), sim
    sim.sim("POST", "reset", {"market": True})


def empty_on_error(sim, endpoint: str, count: int = 50) -> None:
    sim.sim("POST", "fault", {"endpoint": endpoint, "kind": "status", "value": 500, "count": count})
    assert sim.api(endpoint).json() == {"status": "success", "data": []}  # what we will read


def place(alice, account, *legs: Leg, poll: bool = True):
    batch = services.orders_create(user=alice, accounts=[account], legs=list(legs))
    services.orders_send_account(account_id=account.pk, batch_id=batch.pk)
    if poll:
        for o in batch.orders.filter(status__in=[Status.ACCEPTED, Status.OPEN]):
            services.order_refresh(order_id=o.pk)
    return batch


def broker_qty(sim, symbol="SBIN", exchange="NSE", product="MIS") -> int:
    return int(sim.ok("openposition", strategy="t", symbol=symbol, exchange=exchange, product=product)["quantity"])


def unreadable_alerts(account, level=AlertLevel.CRITICAL) -> int:
    return Alert.objects.filter(account=account, kind=AlertKind.BROKER_UNREADABLE, level=level).count()


@pytest.mark.django_db
@pytest.mark.parametrize("send_fault", ["drop_after_execute", "500"])
def test_an_empty_orderbook_on_error_never_resends_an_unknown_order(alice, acc, settings, send_fault):
    account, sim = acc
    place(alice, account, Leg("SBIN", "NSE", "BUY", 1))  # the broker accepted this one today
    fault = {"kind": "drop_after_execute"} if send_fault == "drop_after_execute" else {"kind": "status", "value": 500}
    sim.sim("POST", "fault", {"endpoint": "placeorder", "count": 1, **fault})
    batch = place(alice, account, Leg("INFY", "NSE", "BUY", 1))
    order = batch.orders.get()
    assert order.status == Status.UNKNOWN
    empty_on_error(sim, "orderbook")
    later = order.sent_at + dt.timedelta(seconds=settings.ORDER_ABSENCE_WINDOW + 1)
    for _ in range(reads_needed() + 2):  # more than enough reads to "prove" it absent from []
        o = services.order_reconcile(order_id=order.pk, now=later)
        services.orders_send_account(account_id=account.pk, batch_id=batch.pk)
        assert (o.status, o.absent_reads) == (Status.UNKNOWN, 0), o.last_error
    assert "orderbook unreadable" in o.last_error and "empty while we know 1" in o.last_error
    infy = [r for r in sim.ledger() if r["symbol"] == "INFY"]
    assert len(infy) == (1 if send_fault == "drop_after_execute" else 0)  # never sent again
    assert unreadable_alerts(account) == 1  # after the 3rd unknown read, once for the episode
    # The book reads true again: found (placed), or now really proven absent (never placed).
    sim.sim("DELETE", "fault")
    for _ in range(reads_needed()):
        o = services.order_reconcile(order_id=order.pk, now=later)
        services.orders_send_account(account_id=account.pk, batch_id=batch.pk)
    infy = [r for r in sim.ledger() if r["symbol"] == "INFY"]
    order.refresh_from_db()
    assert len(infy) == 1 and order.status == Status.ACCEPTED and order.broker_orderid == infy[0]["orderid"]
    assert unreadable_alerts(account, AlertLevel.INFO) == 1  # the episode's end is said once
    assert unreadable_alerts(account) == 1


@pytest.mark.django_db
def test_an_exit_on_an_empty_positionbook_is_held_not_denied_and_completes_once_it_reads_true(alice, acc, settings):
    settings.EXIT_BOOKS_AGREE_SECONDS = 0  # disagreeing views would be settled (the smaller wins) at once
    account, sim = acc
    place(alice, account, Leg("SBIN", "NSE", "BUY", 10))
    empty_on_error(sim, "positionbook")
    pos = Position.objects.get(account=account, symbol="SBIN")
    close = services.position_close(user=alice, position_id=pos.pk)
    for _ in range(3):
        services.orders_send_account(account_id=account.pk, batch_id=close.pk)
    o = close.orders.get()
    assert o.status == Status.PENDING and o.attempts == 0, o.last_error  # held, not denied
    assert "exit held" in o.last_error and "positionbook empty" in o.last_error
    assert len(sim.ledger()) == 1
    sim.sim("DELETE", "fault")
    services.orders_send_account(account_id=account.pk, batch_id=close.pk)
    o.refresh_from_db()
    assert o.status == Status.ACCEPTED and o.quantity == 10
    assert broker_qty(sim) == 0 and len(sim.ledger()) == 2
    # Flat now (our fill read too): a second exit on an empty book is denied, never sent.
    services.order_refresh(order_id=o.pk)
    empty_on_error(sim, "positionbook")
    again = place(alice, account, Leg("SBIN", "NSE", "SELL", 10, reduce_only=True)).orders.get()
    assert again.status == Status.REJECTED and "nothing left to close" in again.last_error
    assert broker_qty(sim) == 0 and len(sim.ledger()) == 2  # 0 wrong exits


@pytest.mark.django_db
def test_close_everything_on_an_empty_positionbook_is_held_then_closes(alice, acc, settings):
    settings.EXIT_BOOKS_AGREE_SECONDS = 0
    account, sim = acc
    place(alice, account, Leg("SBIN", "NSE", "BUY", 3), Leg("INFY", "NSE", "SELL", 2))
    empty_on_error(sim, "positionbook")
    batch = services.account_close_all(user=alice, account_id=account.pk)
    assert batch is not None, "nothing to close"
    assert sorted(batch.orders.values_list("action", "symbol", "quantity")) == [("BUY", "INFY", 2), ("SELL", "SBIN", 3)]
    services.orders_send_account(account_id=account.pk, batch_id=batch.pk)
    assert set(batch.orders.values_list("status", flat=True)) == {Status.PENDING}  # held
    assert len(sim.ledger()) == 2
    assert AuditEvent.objects.filter(account=account, message__contains="broker positions unknown").exists()
    sim.sim("DELETE", "fault")
    for _ in range(3):
        services.orders_send_account(account_id=account.pk, batch_id=batch.pk)
    assert broker_qty(sim, "SBIN") == 0 and broker_qty(sim, "INFY") == 0 and len(sim.ledger()) == 4


@pytest.mark.django_db
def test_close_everything_on_an_unreadable_positionbook_is_held_and_tried_again_on_the_worker(alice, acc, monkeypatch):
    account, sim = acc
    place(alice, account, Leg("SBIN", "NSE", "BUY", 3))
    sim.sim("POST", "fault", {"endpoint": "positionbook", "kind": "status", "value": 502})
    again = []
    monkeypatch.setattr(services.enqueue, "close_all_later", lambda *a, **k: again.append((a, k)))  # Celery: outside
    for _ in range(2):
        assert services.account_close_run(account_id=account.pk, user_id=alice.pk) is None
    assert len(again) == 2 and len(sim.ledger()) == 1
    assert AuditEvent.objects.filter(action="close_refused", message__contains="held").count() == 1  # once
    sim.sim("DELETE", "fault")
    batch = services.account_close_run(account_id=account.pk, user_id=alice.pk)
    assert batch is not None and batch.orders.get().quantity == 3


@pytest.mark.django_db
def test_reconciliation_on_empty_books_is_unknown_with_no_flags_and_one_alert(alice, acc):
    account, sim = acc
    place(alice, account, Leg("SBIN", "NSE", "BUY", 4), Leg("INFY", "NSE", "SELL", 3))
    assert services.account_books_refresh(account_id=account.pk).state == Reconciliation.State.MATCHED
    good_trades = BrokerBook.objects.get(account=account, kind="trades").rows
    empty_on_error(sim, "positionbook")
    empty_on_error(sim, "tradebook")
    for _ in range(5):
        recon = services.account_books_refresh(account_id=account.pk)
        assert recon.state == Reconciliation.State.UNKNOWN and recon.differences == []
    assert "positionbook empty while we know 2" in recon.error
    assert not AuditEvent.objects.filter(account=account, action="reconciliation").exists()  # no flag storm
    account.refresh_from_db()
    assert account.trading_state == TradingAccount.TradingState.HALTED  # as for any unreadable positionbook
    trades = BrokerBook.objects.get(account=account, kind="trades")
    assert not trades.ok and trades.rows == good_trades  # the last good copy stays
    assert set(Position.objects.filter(account=account).values_list("symbol", "quantity")) == {
        ("SBIN", 4),
        ("INFY", -3),
    }
    assert unreadable_alerts(account) == 1  # one per episode, not one per cycle
    sim.sim("DELETE", "fault")
    assert services.account_books_refresh(account_id=account.pk).state == Reconciliation.State.MATCHED
    account.refresh_from_db()
    assert account.trading_state == TradingAccount.TradingState.ACTIVE
    assert unreadable_alerts(account, AlertLevel.INFO) == 1
    # A new episode alerts again.
    empty_on_error(sim, "positionbook")
    for _ in range(3):
        services.account_books_refresh(account_id=account.pk)
    assert unreadable_alerts(account) == 2


@pytest.mark.django_db
def test_close_everything_runs_against_the_angel_profile_too(alice, acc):
    """Nothing failing: the Angel-like profile reads like the clean one."""
    account, sim = acc
    place(alice, account, Leg("SBIN", "NSE", "BUY", 3))
    batch = services.account_close_all(user=alice, account_id=account.pk)
    services.orders_send_account(account_id=account.pk, batch_id=batch.pk)
    assert broker_qty(sim) == 0 and len(sim.ledger()) == 2


# The order path's reduce-only tests, run here again on this module's `acc`: the Angel-like profile.
from trading.tests.test_exits_and_books import (  # noqa: E402
    test_a_second_exit_of_a_closed_position_is_never_sent as test_angel_a_second_exit_is_never_sent,
)
from trading.tests.test_exits_and_books import (  # noqa: E402
    test_an_exit_larger_than_the_position_is_trimmed_never_flips as test_angel_an_exit_is_trimmed_never_flips,
)
from trading.tests.test_exits_and_books import (  # noqa: E402
    test_an_unreadable_positionbook_holds_the_exit as test_angel_an_unreadable_positionbook_holds_the_exit,
)
from trading.tests.test_order_path_attacks import (  # noqa: E402
    test_an_exit_never_flips_over_a_plain_sell_filled_but_not_read_yet as test_angel_no_flip_over_a_plain_sell,
)
from trading.tests.test_order_path_attacks import (  # noqa: E402
    test_an_exit_waits_for_a_plain_sell_whose_outcome_is_unknown as test_angel_an_exit_waits_for_an_unknown_sell,
)
from trading.tests.test_order_path_attacks import (  # noqa: E402
    test_close_everything_closes_a_position_the_lagging_positionbook_does_not_show_yet as test_angel_close_on_a_lag,
)
from trading.tests.test_order_path_attacks import (  # noqa: E402
    test_close_everything_never_sells_the_long_while_the_short_is_still_open as test_angel_close_short_first,
)

ANGEL_REDUCE_ONLY = [
    test_angel_a_second_exit_is_never_sent,
    test_angel_an_exit_is_trimmed_never_flips,
    test_angel_an_unreadable_positionbook_holds_the_exit,
    test_angel_no_flip_over_a_plain_sell,
    test_angel_an_exit_waits_for_an_unknown_sell,
    test_angel_close_on_a_lag,
    test_angel_close_short_first,
]


# ------------------------------------------------------------------ the broker's MIS square-off
def at_ist(hour: int, minute: int) -> dt.datetime:
    """Today (IST) at that time: the clock the reconciliation reads."""
    return dt.datetime.now(IST).replace(hour=hour, minute=minute, second=0, microsecond=0)


def broker_squares_off(sim, symbol: str, action: str, quantity: int) -> None:
    """The broker's own order: no tag of ours (what OpenAlgo's square-off places)."""
    body = {"symbol": symbol, "exchange": "NSE", "action": action, "quantity": str(quantity)}
    sim.ok("placeorder", strategy="", pricetype="MARKET", product="MIS", **body)


@pytest.mark.django_db
def test_the_broker_square_off_after_15_15_is_adopted_not_flagged(alice, acc):
    account, sim = acc
    place(alice, account, Leg("SBIN", "NSE", "BUY", 10), Leg("INFY", "NSE", "SELL", 4))
    broker_squares_off(sim, "SBIN", "SELL", 10)
    broker_squares_off(sim, "INFY", "BUY", 4)
    n = len(sim.ledger())
    # Before the square-off time the same books are a difference for a person (conservative).
    early = services.account_books_refresh(account_id=account.pk, now=at_ist(15, 10))
    assert early.state == Reconciliation.State.MISMATCH and {d["kind"] for d in early.differences} == {"missing"}
    recon = services.account_books_refresh(account_id=account.pk, now=at_ist(15, 20))
    assert recon.state == Reconciliation.State.MATCHED, recon.differences
    assert set(Position.objects.filter(account=account).values_list("symbol", "quantity")) == {("SBIN", 0), ("INFY", 0)}
    squared = Order.objects.filter(account=account, broker_status="squared off by the broker")
    assert sorted(squared.values_list("symbol", "action", "filled_quantity", "status")) == [
        ("INFY", "BUY", 4, Status.COMPLETE),
        ("SBIN", "SELL", 10, Status.COMPLETE),
    ]
    sbin = Position.objects.get(account=account, symbol="SBIN")
    fill = squared.get(symbol="SBIN")
    bought = Order.objects.get(account=account, symbol="SBIN", action="BUY")
    assert sbin.realized == (fill.average_price - bought.average_price) * 10
    audits = AuditEvent.objects.filter(account=account, action="position_repaired", message__contains="squared off")
    assert audits.count() == 2
    assert len(sim.ledger()) == n  # nothing placed by us
    # Read again: nothing adopted twice.
    services.account_books_refresh(account_id=account.pk, now=at_ist(15, 25))
    assert squared.count() == 2 and audits.count() == 2


@pytest.mark.django_db
def test_a_partial_close_by_someone_else_after_15_15_stays_a_difference(alice, acc):
    account, sim = acc
    place(alice, account, Leg("SBIN", "NSE", "BUY", 10))
    broker_squares_off(sim, "SBIN", "SELL", 6)
    recon = services.account_books_refresh(account_id=account.pk, now=at_ist(15, 20))
    assert recon.state == Reconciliation.State.MISMATCH
    assert recon.differences[0]["ours"] == 10 and recon.differences[0]["broker"] == 4
    assert Position.objects.get(account=account, symbol="SBIN").quantity == 10


@pytest.mark.django_db
def test_delivery_bought_before_today_need_not_be_listed_among_positions(alice, acc):
    """The next day a broker shows yesterday's CNC buy among holdings, not positions: a
    positionbook without it is not unknown (the account is not halted over it)."""
    account, sim = acc
    Position.objects.create(account=account, exchange="NSE", symbol="TCS", product="CNC", quantity=5)
    Position.objects.filter(account=account).update(updated_at=day_start() - dt.timedelta(hours=1))
    assert services.account_books_refresh(account_id=account.pk).state != Reconciliation.State.UNKNOWN
    account.refresh_from_db()
    assert account.trading_state == TradingAccount.TradingState.ACTIVE
    Position.objects.filter(account=account).update(updated_at=day_start() + dt.timedelta(minutes=1))  # today: listed
    assert services.account_books_refresh(account_id=account.pk).state == Reconciliation.State.UNKNOWN
