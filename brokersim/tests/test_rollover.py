"""The daily rollover: the broker squares off MIS at 15:15, day orders expire at the close, and
at 03:00 the day's orders and trades leave the books while NRML positions carry over."""

from __future__ import annotations

import datetime as dt

import pytest

from brokersim import calendar as cal
from brokersim.engine import BY_BROKER, EXPIRED_REMARK, SQUARE_OFF_CANCEL_REMARK, SQUARE_OFF_REMARK
from brokersim.simulator import Simulator

NSE_DAY = frozenset({"NSE", "BSE", "NFO", "BFO"})


def at(day: int, hh: int, mm: int, ss: int = 0) -> dt.datetime:
    return dt.datetime(2026, 12, day, hh, mm, ss, tzinfo=cal.IST)


@pytest.mark.parametrize(
    ("after", "upto", "events"),
    [
        (at(2, 15, 14), at(2, 15, 15), [("squareoff", NSE_DAY)]),
        (at(2, 15, 15), at(2, 15, 16), []),  # the boundary belongs to the interval it ends
        (at(2, 15, 14), at(2, 15, 31), [("squareoff", NSE_DAY), ("close", NSE_DAY)]),
        (at(2, 23, 0), at(2, 23, 45), [("squareoff", frozenset({"MCX"})), ("close", frozenset({"MCX"}))]),
        (at(2, 23, 45), at(3, 3, 0), [("new_day", None)]),
        (at(2, 10, 0), at(2, 10, 5), []),
    ],
)
def test_rollover_events(after, upto, events):
    assert cal.rollover_events(after, upto) == events


def test_a_whole_day_has_every_stage_in_time_order():
    stages = [s for s, _ in cal.rollover_events(at(2, 3, 0), at(3, 3, 0))]
    assert stages[0] == "squareoff" and stages[-1] == "new_day"
    assert stages.count("new_day") == 1 and stages.count("close") == 3


# ---------------------------------------------------------------------- over REST
def order(broker, symbol="RELIANCE", exchange="NSE", quantity=5, product="MIS", action="BUY", limit=False) -> str:
    body = {"strategy": "t", "symbol": symbol, "exchange": exchange, "action": action, "quantity": quantity}
    if limit:
        ltp = broker.ok("quotes", symbol=symbol, exchange=exchange)["data"]["ltp"]
        body.update(pricetype="LIMIT", price=round(ltp * 0.8))  # far below: rests
    return broker.ok("placeorder", **body, product=product)["orderid"]


def rows(broker) -> dict[str, dict]:
    return {r["orderid"]: r for r in broker.ok("orderbook")["data"]["orders"]}


def test_the_broker_squares_off_mis(broker):
    nifty = broker.nearest_future("NIFTY", "NFO")
    order(broker)
    order(broker, nifty, "NFO", 65, "NRML")
    resting = order(broker, quantity=1, limit=True)
    assert broker.rollover("squareoff", ["MCX"])["squared_off"] == []  # not this exchange's time
    out = broker.rollover("squareoff")
    (closing,) = out["squared_off"]
    book = rows(broker)
    assert (book[resting]["order_status"], book[resting]["remark"]) == ("cancelled", SQUARE_OFF_CANCEL_REMARK)
    row = book[closing]
    assert (row["action"], row["quantity"], row["product"], row["order_status"]) == ("SELL", 5, "MIS", "complete")
    assert row["remark"] == SQUARE_OFF_REMARK and "strategy" not in row
    trade = next(t for t in broker.ok("tradebook")["data"] if t["orderid"] == closing)
    assert "strategy" not in trade
    positions = {(p["symbol"], p["product"]): p["quantity"] for p in broker.ok("positionbook")["data"]}
    assert positions == {("RELIANCE", "MIS"): 0, (nifty, "NRML"): 65}
    last = broker.ledger()[-1]
    assert (last["orderid"], last["placed_by"], last["strategy"]) == (closing, BY_BROKER, "")
    assert broker.rollover("squareoff")["squared_off"] == []  # nothing left to close


def test_unfilled_day_orders_expire_at_the_close(broker):
    live = order(broker, quantity=1, product="CNC", limit=True)
    assert broker.rollover("close")["expired"] == [live]
    assert rows(broker)[live]["order_status"] == "cancelled"
    assert rows(broker)[live]["remark"] == EXPIRED_REMARK
    assert broker.ok("orderstatus", orderid=live, strategy="t")["data"]["order_status"] == "cancelled"
    assert broker.ok("funds")["data"]["utiliseddebits"] == 0  # its margin is released


def test_dhan_shows_an_expired_order_as_expired(broker):
    broker.set_profile("dhan")
    live = order(broker, quantity=1, product="CNC", limit=True)
    broker.rollover("close")
    assert rows(broker)[live]["order_status"] == "EXPIRED"
    assert broker.ok("orderstatus", orderid=live, strategy="t")["data"]["order_status"] == "EXPIRED"


def test_a_new_day_clears_the_books_and_carries_nrml(broker):
    nifty = broker.nearest_future("NIFTY", "NFO")
    carried = order(broker, nifty, "NFO", 65, "NRML")
    order(broker, quantity=5)
    order(broker, quantity=5, action="SELL")  # a closed MIS round trip: realised P&L
    order(broker, quantity=2, product="CNC")
    held = {h["symbol"]: h["quantity"] for h in broker.ok("holdings")["data"]["holdings"]}
    avg = next(p["average_price"] for p in broker.ok("positionbook")["data"] if p["symbol"] == nifty)
    broker.sim("POST", "market", {"paused": True})
    cash = broker.ok("funds")["data"]["availablecash"]
    ledger = broker.ledger()
    out = broker.rollover("day_end")
    assert out["session"] == 1 and out["squared_off"] == []
    r = broker.api("orderstatus", orderid=carried, strategy="t")
    assert r.status_code == 404 and r.json() == {"status": "error", "message": f"Order {carried} not found"}
    assert broker.api("cancelorder", orderid=carried, strategy="t").status_code == 404
    assert broker.ok("orderbook")["data"]["orders"] == []
    assert broker.ok("tradebook")["data"] == []
    (pos,) = broker.ok("positionbook")["data"]
    assert (pos["symbol"], pos["product"], pos["quantity"], pos["average_price"]) == (nifty, "NRML", 65, avg)
    assert pos["today_realized_pnl"] == 0
    now_held = {h["symbol"]: h["quantity"] for h in broker.ok("holdings")["data"]["holdings"]}
    assert now_held["RELIANCE"] == held.get("RELIANCE", 0) + 2  # the CNC buy became a holding
    # Realised P&L settled into cash, the CNC buy paid for: the money available is the same.
    assert broker.ok("funds")["data"]["availablecash"] == pytest.approx(cash, abs=0.01)
    # The ledger keeps every day.
    assert broker.ledger() == ledger
    today = order(broker, quantity=1)
    assert [o["orderid"] for o in broker.ledger()] == [o["orderid"] for o in ledger] + [today]
    assert broker.ledger()[-1]["session"] == 1 and ledger[0]["session"] == 0
    assert list(rows(broker)) == [today]


def test_reset_forgets_previous_days(broker):
    order(broker)
    broker.rollover("new_day")
    broker.sim("POST", "reset")
    assert broker.ledger() == [] and broker.sim("GET", "status")["session"] == 0


def test_rollover_refuses_an_unknown_stage(broker):
    r = broker.http.post("/_sim/rollover", json={"stage": "lunch"})
    assert r.status_code == 400 and "squareoff" in r.json()["message"]


# ---------------------------------------------------------------------- on the market clock
def test_auto_rollover_follows_the_market_clock():
    sim = Simulator(accounts=1, seed=3, start=at(2, 15, 14, 59), history_days=1, auto_rollover=True, fast=True)
    acc = sim.instances[0].account
    acc.place(strategy="t", symbol="RELIANCE", exchange="NSE", action="BUY", quantity=3, product="MIS")
    for _ in range(10):  # two simulated seconds: past 15:15
        sim.tick()
    assert acc.net_quantity("RELIANCE", "NSE", "MIS") == 0
    assert [o.placed_by for o in acc.orders.values()] == ["api", BY_BROKER]


@pytest.mark.parametrize("auto", [True, False])
def test_three_in_the_morning_clears_the_books_only_with_auto_rollover(auto):
    sim = Simulator(accounts=1, seed=3, start=at(3, 2, 59, 59), history_days=1, auto_rollover=auto, fast=True)
    acc = sim.instances[0].account
    acc.place(strategy="t", symbol="RELIANCE", exchange="NSE", action="BUY", quantity=3, product="CNC")
    for _ in range(10):
        sim.tick()
    assert (len(acc.orders), len(acc.archive), acc.session) == ((0, 1, 1) if auto else (1, 0, 0))
