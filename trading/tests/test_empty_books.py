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
