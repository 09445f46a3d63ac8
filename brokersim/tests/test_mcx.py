"""MCX commodity futures: listed, quoted, traded and booked like NFO futures; Zerodha counts
them in contracts, the other brokers in units, for the same money."""

from __future__ import annotations

import datetime as dt
import json

import pytest

from brokersim import calendar as cal
from brokersim import instruments as ins
from brokersim.market import Market

from .test_ws import connect, market_frames

TODAY = dt.date(2026, 12, 2)


@pytest.mark.parametrize(
    ("name", "expiries"),
    [
        # 19 Dec 2026 is a Saturday: the Friday before.
        ("CRUDEOIL", [dt.date(2026, 12, 18), dt.date(2027, 1, 19), dt.date(2027, 2, 19)]),
        ("CRUDEOILM", [dt.date(2026, 12, 18), dt.date(2027, 1, 19), dt.date(2027, 2, 19)]),
        # 26 Dec is a Saturday and the 25th a holiday: the 24th.
        ("NATURALGAS", [dt.date(2026, 12, 24), dt.date(2027, 1, 26), dt.date(2027, 2, 26)]),
        ("GOLDM", [dt.date(2026, 12, 4), dt.date(2027, 1, 5), dt.date(2027, 2, 5)]),
    ],
)
def test_monthly_expiries_on_a_day_of_the_month(name, expiries):
    assert list(ins.future_expiries(ins.UNDERLYINGS[name], TODAY)) == expiries


@pytest.mark.parametrize(
    ("name", "lot", "freeze", "tick"),
    [
        ("CRUDEOIL", 100, 10000, 1.0),
        ("CRUDEOILM", 10, 1000, 1.0),
        ("GOLDM", 10, 1000, 1.0),
        ("NATURALGAS", 1250, 125000, 0.1),
    ],
)
def test_commodity_futures_only(name, lot, freeze, tick):
    u = ins.UNDERLYINGS[name]
    fut = ins.lookup(ins.future_symbol(name, ins.future_expiries(u, TODAY)[0]), "MCX", TODAY)
    assert fut is not None and fut.kind == "future"
    assert (fut.lot_size, fut.freeze_qty, fut.tick_size) == (lot, freeze, tick)
    assert ins.lookup(name, "MCX", TODAY) is None  # no spot instrument
    assert ins.lookup(fut.symbol, "NFO", TODAY) is None
    assert ins.option_expiries(u, TODAY) == ()


def test_an_mcx_contract_lives_until_the_mcx_close():
    # 18 Dec 2026 is CRUDEOIL's expiry; NSE has closed at 16:00, MCX has not.
    m = Market(seed=1, start=dt.datetime(2026, 12, 18, 16, 0, tzinfo=cal.IST), history_days=1)
    assert m.lookup("CRUDEOIL18DEC26FUT", "MCX") is not None
    assert m.lookup("NIFTY", "NSE_INDEX") is not None
    late = Market(seed=1, start=dt.datetime(2026, 12, 18, 23, 31, tzinfo=cal.IST), history_days=1)
    assert late.lookup("CRUDEOIL18DEC26FUT", "MCX") is None


def test_commodities_leave_the_equity_market_of_a_seed_unchanged():
    """The MCX walks draw from their own random stream."""
    m = Market(seed=5, start=dt.datetime(2026, 12, 2, 11, 0, tzinfo=cal.IST), history_days=2)
    spots = {n: s for n, s in m.spots.items() if n not in ins.COMMODITY_NAMES}
    for _ in range(20):
        m.step()
    m2 = Market(seed=5, start=dt.datetime(2026, 12, 2, 11, 0, tzinfo=cal.IST), history_days=2)
    assert {n: s for n, s in m2.spots.items() if n not in ins.COMMODITY_NAMES} == spots
    assert all(m.spots[n] > 0 for n in ins.COMMODITY_NAMES)


# ---------------------------------------------------------------------- over REST
def buy(broker, symbol: str, quantity: int, action: str = "BUY", product: str = "NRML") -> str:
    body = {"strategy": "t", "symbol": symbol, "exchange": "MCX", "action": action, "quantity": quantity}
    return broker.ok("placeorder", **body, pricetype="MARKET", product=product)["orderid"]


def test_mcx_everywhere_an_nfo_future_goes(broker):
    expiries = broker.ok("expiry", symbol="CRUDEOIL", exchange="MCX", instrumenttype="futures")["data"]
    assert len(expiries) == 3
    fut = broker.nearest_future("CRUDEOIL")
    info = broker.ok("symbol", symbol=fut, exchange="MCX")["data"]
    assert (info["lotsize"], info["freeze_qty"], info["exchange"], info["instrumenttype"]) == (100, 10000, "MCX", "FUT")
    found = broker.ok("search", query="CRUDEOIL", exchange="MCX")["data"]
    assert fut in {r["symbol"] for r in found} and all(r["exchange"] == "MCX" for r in found)
    assert {r["symbol"] for r in found} >= {f"CRUDEOILM{e.replace('-', '')}FUT" for e in expiries}
    quote = broker.ok("quotes", symbol=fut, exchange="MCX")["data"]
    assert quote["ltp"] > 1000 and float(quote["ltp"]).is_integer()  # tick 1.0
    r = broker.api("placeorder", strategy="t", symbol=fut, exchange="MCX", action="BUY", quantity=50, product="NRML")
    assert r.status_code == 400 and "multiples of lot size 100" in r.json()["message"]
    oid = buy(broker, fut, 200)
    assert broker.ok("orderstatus", orderid=oid, strategy="t")["data"]["order_status"] == "complete"
    (pos,) = broker.ok("positionbook")["data"]
    assert (pos["symbol"], pos["exchange"], pos["quantity"], pos["lot_size"]) == (fut, "MCX", 200, 100)
    (trade,) = broker.ok("tradebook")["data"]
    assert trade["quantity"] == 200 and trade["trade_value"] == pytest.approx(trade["average_price"] * 200, abs=0.01)
    assert broker.ok("openposition", symbol=fut, exchange="MCX", product="NRML", strategy="t")["quantity"] == 200


def test_mcx_ticks_on_the_feed(broker):
    fut = broker.nearest_future("NATURALGAS")
    ws = connect(broker)
    ws.send(json.dumps({"action": "subscribe", "symbols": [{"symbol": fut, "exchange": "MCX"}], "mode": 1}))
    (frame,) = market_frames(ws, 1, fut)
    assert frame["exchange"] == "MCX" and frame["data"]["ltp"] > 0
    ws.close()


def test_zerodha_counts_mcx_in_contracts(broker):
    fut = broker.nearest_future("CRUDEOIL")
    broker.set_profile("zerodha")
    info = broker.ok("symbol", symbol=fut, exchange="MCX")["data"]
    assert (info["lotsize"], info["freeze_qty"]) == (1, 100)
    assert {r["lotsize"] for r in broker.ok("search", query="CRUDEOIL", exchange="MCX")["data"]} == {1}
    # Only MCX: an NFO future keeps its unit lot size.
    nifty = broker.nearest_future("NIFTY", "NFO")
    assert broker.ok("symbol", symbol=nifty, exchange="NFO")["data"]["lotsize"] == 65
    r = broker.api("placeorder", strategy="t", symbol=fut, exchange="MCX", action="BUY", quantity=101, product="NRML")
    assert r.status_code == 400 and "exceeds freeze quantity 100" in r.json()["message"]
    buy(broker, fut, 2)
    (placed,) = broker.ledger()
    assert placed["quantity"] == 2 and placed["status"] == "complete"
    (pos,) = broker.ok("positionbook")["data"]
    assert pos["quantity"] == "2"
    assert broker.ok("tradebook")["data"][0]["quantity"] == 2


def test_one_contract_at_zerodha_is_one_hundred_units_elsewhere(brokers):
    zerodha, units = brokers[0], brokers[2]
    assert units.sim("GET", "status")["profile"] == "sandbox"
    zerodha.set_profile("zerodha")
    fut = units.nearest_future("CRUDEOIL")
    units.sim("POST", "market", {"paused": True})
    units.sim("POST", "price", {"symbol": fut, "exchange": "MCX", "ltp": 5400})
    buy(zerodha, fut, 1)
    buy(units, fut, 100)
    z_trade, u_trade = zerodha.ok("tradebook")["data"][0], units.ok("tradebook")["data"][0]
    assert (z_trade["quantity"], u_trade["quantity"]) == (1, 100)
    assert (
        float(z_trade["trade_value"])
        == pytest.approx(u_trade["trade_value"])
        == pytest.approx(100 * u_trade["average_price"])
    )
    z_funds, u_funds = zerodha.ok("funds")["data"], units.ok("funds")["data"]
    assert u_funds["utiliseddebits"] > 0
    assert float(z_funds["utiliseddebits"]) == pytest.approx(u_funds["utiliseddebits"], abs=0.01)
    units.sim("POST", "price", {"symbol": fut, "exchange": "MCX", "ltp": 5450})
    z_pos, u_pos = zerodha.ok("positionbook")["data"][0], units.ok("positionbook")["data"][0]
    assert float(z_pos["pnl"]) == pytest.approx(u_pos["pnl"], abs=0.01)
    assert u_pos["unrealized_pnl"] == pytest.approx((5450 - u_pos["average_price"]) * 100, abs=0.01)
    buy(zerodha, fut, 1, "SELL")
    buy(units, fut, 100, "SELL")
    z_funds, u_funds = zerodha.ok("funds")["data"], units.ok("funds")["data"]
    assert float(z_funds["m2mrealized"]) == pytest.approx(u_funds["m2mrealized"], abs=0.01)
    assert u_funds["m2mrealized"] == pytest.approx((5450 - 5400) * 100, abs=1000)  # less the spread
    assert float(z_funds["utiliseddebits"]) == u_funds["utiliseddebits"] == 0
