"""Parsing the broker's books and comparing them with ours: worked examples (pure, no Django)."""

from __future__ import annotations

from decimal import Decimal

import pytest

from trading import brokerbooks as bb


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        # Live docs shape: strings; closed positions stay listed at 0.
        (
            [
                {"symbol": "NHPC", "exchange": "NSE", "product": "MIS", "quantity": "-1", "average_price": "83.74"},
                {"symbol": "SBIN", "exchange": "NSE", "product": "MIS", "quantity": "0", "average_price": "0"},
            ],
            {("NSE", "NHPC", "MIS"): -1, ("NSE", "SBIN", "MIS"): 0},
        ),
        # Sandbox shape: numbers.
        (
            [{"symbol": "X", "exchange": "NFO", "product": "NRML", "quantity": 130, "average_price": 12.5}],
            {("NFO", "X", "NRML"): 130},
        ),
        # One instrument listed twice adds up.
        (
            [
                {"symbol": "X", "exchange": "NSE", "product": "CNC", "quantity": "5"},
                {"symbol": "X", "exchange": "NSE", "product": "CNC", "quantity": "-2"},
            ],
            {("NSE", "X", "CNC"): 3},
        ),
        # A readable, empty book is flat.
        ([], {}),
    ],
)
def test_positionbook_reads(data, expected):
    assert {k: p.quantity for k, p in bb.parse_positionbook(data).items()} == expected


@pytest.mark.parametrize(
    "data",
    [
        None,  # nothing at all
        {"status": "error"},  # an object, not a list
        "<html>502</html>",
        [{"symbol": "X", "exchange": "NSE", "product": "MIS"}],  # quantity missing
        [{"symbol": "X", "exchange": "NSE", "product": "MIS", "quantity": ""}],
        [{"symbol": "X", "exchange": "NSE", "product": "MIS", "quantity": "abc"}],
        [{"symbol": "X", "exchange": "NSE", "product": "MIS", "quantity": "NaN"}],
        [{"symbol": "X", "exchange": "NSE", "product": "MIS", "quantity": "1.5"}],
        [{"symbol": "X", "product": "MIS", "quantity": "1"}],  # exchange missing
        ["not a row"],
    ],
)
def test_an_unreadable_positionbook_is_never_flat(data):
    with pytest.raises(bb.BookUnreadable):
        bb.parse_positionbook(data)


def test_tradebook_and_holdings():
    trades = bb.parse_tradebook(
        [
            {
                "action": "buy",
                "symbol": "RELIANCE",
                "exchange": "NSE",
                "orderid": "1",
                "product": "MIS",
                "quantity": 2,
                "average_price": 1180.1,
            }
        ]
    )
    assert trades[0]["action"] == "BUY" and Decimal(trades[0]["value"]) == Decimal("2360.2")
    holdings = bb.parse_holdings({"holdings": [{"symbol": "TCS", "exchange": "NSE", "quantity": 3, "pnl": -1.5}]})
    assert holdings[0]["quantity"] == 3 and holdings[0]["pnl"] == "-1.5"
    with pytest.raises(bb.BookUnreadable):
        bb.parse_holdings({"holdings": [{"symbol": "TCS"}]})


def _book(**qty):
    return {("NSE", s, "MIS"): bb.BrokerPosition("NSE", s, "MIS", q, Decimal(1)) for s, q in qty.items()}


@pytest.mark.parametrize(
    ("ours", "broker", "expected"),
    [
        ({"A": 10}, {"A": 10}, []),
        ({}, {"A": 5}, [("A", 0, 5, bb.OUTSIDE)]),  # a trade placed directly at the broker
        ({"A": 10}, {"A": 15}, [("A", 10, 15, bb.OUTSIDE)]),  # added to outside AlgoMirror
        ({"A": 10}, {"A": 0}, [("A", 10, 0, bb.MISSING)]),  # exited while we were down
        ({"A": -10}, {}, [("A", -10, 0, bb.MISSING)]),
        ({"A": 10}, {"A": -5}, [("A", 10, -5, bb.MISSING)]),  # flipped elsewhere
        ({"A": 0}, {"A": 0}, []),
    ],
)
def test_compare(ours, broker, expected):
    diffs = bb.compare({("NSE", s, "MIS"): q for s, q in ours.items()}, _book(**broker))
    assert [(d.symbol, d.ours, d.broker, d.kind) for d in diffs] == expected


@pytest.mark.parametrize(
    ("action", "broker", "in_flight", "allowed"),
    [
        ("SELL", 10, [], 10),  # long 10: sell up to 10
        ("SELL", 10, [("SELL", 4)], 6),  # 4 already on the way out
        ("SELL", 10, [("SELL", 10)], 0),  # a second full exit: denied (the −300 bug)
        ("SELL", 0, [], 0),  # flat: nothing to reduce
        ("SELL", -5, [], 0),  # selling a short would increase it
        ("BUY", -65, [], 65),  # short: buy back
        ("BUY", -65, [("SELL", 10)], 65),  # exits the other way do not count
        ("BUY", 5, [], 0),
    ],
)
def test_exit_allowance(action, broker, in_flight, allowed):
    assert bb.exit_allowance(action, broker, in_flight) == allowed
