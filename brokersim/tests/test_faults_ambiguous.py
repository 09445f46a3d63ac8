"""The faults that leave a client unsure what happened: an order placed after the client was
told nothing, a positionbook that lags its fills, replies without orderid or status, an
orderbook that leaves orders out. Each is driven through the REST API, and the ledger says
what really executed."""

from __future__ import annotations

import time

import httpx
import pytest

from .test_faults import arm, post

DROPPED = (httpx.RemoteProtocolError, httpx.ReadError)


@pytest.fixture
def order(broker):
    return {
        "apikey": broker.api_key,
        "strategy": "amb",
        "symbol": broker.atm_option(),
        "exchange": "NFO",
        "action": "BUY",
        "quantity": 65,
        "pricetype": "MARKET",
        "product": "NRML",
    }


def wait_for(check, timeout=5.0):
    deadline = time.monotonic() + timeout
    while not (out := check()):
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.05)
    return out


def positions(broker) -> dict[str, int]:
    return {row["symbol"]: row["quantity"] for row in broker.ok("positionbook")["data"] if row["quantity"]}


# ---------------------------------------------------------------------- late_execute
def test_late_execute_resets_then_places_the_order_later(broker, order):
    arm(broker, kind="late_execute", value=1, count=1)
    start = time.monotonic()
    with pytest.raises(DROPPED):
        post(broker, order)
    assert broker.ledger() == [] and broker.ok("orderbook")["data"]["orders"] == []
    ledger = wait_for(broker.ledger)
    assert time.monotonic() - start >= 0.9
    assert [(o["status"], o["strategy"], o["quantity"]) for o in ledger] == [("complete", "amb", 65)]
    [row] = broker.ok("orderbook")["data"]["orders"]
    assert (row["orderid"], row["strategy"]) == (ledger[0]["orderid"], "amb")
    assert [t["orderid"] for t in broker.ok("tradebook")["data"]] == [ledger[0]["orderid"]]
    assert positions(broker) == {order["symbol"]: 65}
    assert post(broker, order).status_code == 200  # count=1: the next one is served at once


def test_late_execute_is_dropped_by_a_reset(broker, order):
    arm(broker, kind="late_execute", value=0.5, count=1)
    with pytest.raises(DROPPED):
        post(broker, order)
    broker.sim("POST", "reset")
    time.sleep(1.0)
    assert broker.ledger() == []


def test_late_execute_goes_through_the_engine_checks_when_it_runs(broker):
    # A CNC sell beyond the holdings: the engine records it as rejected, a second later.
    arm(broker, kind="late_execute", value=0.3, count=1)
    sell = {
        "apikey": broker.api_key,
        "strategy": "amb",
        "symbol": "RELIANCE",
        "exchange": "NSE",
        "action": "SELL",
        "quantity": 100000,
        "pricetype": "MARKET",
        "product": "CNC",
    }
    with pytest.raises(DROPPED):
        post(broker, sell)
    ledger = wait_for(broker.ledger)
    assert [o["status"] for o in ledger] == ["rejected"]


def test_late_execute_of_an_invalid_request_places_nothing(broker, order):
    arm(broker, kind="late_execute", value=0.2, count=1)
    with pytest.raises(DROPPED):
        post(broker, dict(order, apikey="0" * 64))
    time.sleep(0.6)
    assert broker.ledger() == []


# ---------------------------------------------------------------------- positionbook_lag
def test_positionbook_lag_hides_fills_younger_than_the_lag(broker, order):
    assert post(broker, order).status_code == 200
    time.sleep(1.5)
    assert post(broker, order).status_code == 200
    arm(broker, endpoint="positionbook", kind="positionbook_lag", value=1)
    assert positions(broker) == {order["symbol"]: 65}  # the first fill only
    wait_for(lambda: positions(broker) == {order["symbol"]: 130})


def test_positionbook_lag_before_any_fill_shows_an_empty_book(broker, order):
    arm(broker, endpoint="positionbook", kind="positionbook_lag", value=30)
    assert post(broker, order).status_code == 200
    assert broker.ok("positionbook")["data"] == []
    broker.sim("DELETE", "fault")
    assert positions(broker) == {order["symbol"]: 65}


def test_positionbook_lag_leaves_closeposition_and_openposition_on_live_positions(broker, order):
    arm(broker, endpoint="positionbook", kind="positionbook_lag", value=30)
    assert post(broker, order).status_code == 200
    assert positions(broker) == {}
    q = broker.ok("openposition", strategy="amb", symbol=order["symbol"], exchange="NFO", product="NRML")
    assert q["quantity"] == 65
    assert broker.ok("closeposition", strategy="amb")["closed_positions"] == 1
    assert [(o["action"], o["status"]) for o in broker.ledger()] == [("BUY", "complete"), ("SELL", "complete")]
    broker.sim("DELETE", "fault")
    assert positions(broker) == {}


# ---------------------------------------------------------------------- no_orderid / no_status
def test_no_orderid_places_the_order_and_answers_success_without_its_id(broker, order):
    arm(broker, kind="no_orderid", count=1)
    r = post(broker, order)
    assert (r.status_code, r.json()) == (200, {"status": "success"})
    [row] = broker.ok("orderbook")["data"]["orders"]
    assert (row["strategy"], row["order_status"]) == ("amb", "complete")
    assert len(broker.ledger()) == 1
    assert "orderid" in post(broker, order).json()  # used up


@pytest.mark.parametrize(("value", "content"), [(None, b"{}"), ("empty", b"")])
def test_no_status_executes_and_answers_200_without_status(broker, order, value, content):
    arm(broker, endpoint="*", kind="no_status", value=value, count=2)
    r = post(broker, order)
    assert (r.status_code, r.content) == (200, content)
    assert len(broker.ledger()) == 1
    r = broker.api("funds")
    assert (r.status_code, r.content) == (200, content)
    assert broker.ok("funds")["status"] == "success"  # used up


# ---------------------------------------------------------------------- orderbook_omits
def test_orderbook_omits_orders_placed_after_it_was_armed_while_it_has_uses(broker, order):
    first = post(broker, order).json()["orderid"]
    arm(broker, endpoint="orderbook", kind="orderbook_omits", count=2)
    second = post(broker, order).json()["orderid"]
    for _ in range(2):
        book = broker.ok("orderbook")["data"]
        assert [o["orderid"] for o in book["orders"]] == [first]
        assert book["statistics"]["total_buy_orders"] == 1
    assert [o["orderid"] for o in broker.ok("orderbook")["data"]["orders"]] == [second, first]
    assert broker.ok("orderstatus", strategy="amb", orderid=second)["data"]["order_status"] == "complete"


# ---------------------------------------------------------------------- validation
@pytest.mark.parametrize(
    "fault",
    [
        {"kind": "late_execute"},
        {"kind": "late_execute", "value": "soon"},
        {"kind": "late_execute", "value": 601},
        {"kind": "positionbook_lag", "value": -1},
        {"kind": "positionbook_lag", "value": True},
        {"kind": "positionbook_lag", "value": "nan"},
        {"kind": "no_status", "value": "weird"},
        {"kind": "orderbook_omits", "count": -2},
    ],
)
def test_bad_values_for_the_new_kinds_are_refused(broker, fault):
    r = broker.http.post("/_sim/fault", json=fault)
    assert r.status_code == 400 and r.json()["status"] == "error"
    assert broker.http.get("/_sim/fault").json()["faults"] == []


def test_the_new_kinds_show_in_the_fault_list(broker):
    arm(broker, endpoint="positionbook", kind="positionbook_lag", value=2.5)
    arm(broker, endpoint="orderbook", kind="orderbook_omits", count=1)
    faults = broker.http.get("/_sim/fault").json()["faults"]
    assert faults == [
        {"endpoint": "positionbook", "kind": "positionbook_lag", "value": 2.5, "count": None},
        {"endpoint": "orderbook", "kind": "orderbook_omits", "value": None, "count": 1},
    ]
