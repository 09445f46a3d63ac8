"""The official OpenAlgo SDK, unmodified, pointed at brokersim: every REST call it offers that
brokersim serves, and its WebSocket client for LTP, Quote and Depth."""

from __future__ import annotations

import threading
import time

import pandas as pd
import pytest
from openalgo import api


@pytest.fixture
def sdk(broker):
    client = api(api_key=broker.api_key, host=broker.host, ws_url=broker.ws_url, timeout=10.0)
    yield client
    client.close()


def ok(resp: dict) -> dict:
    assert resp.get("status") == "success", resp
    return resp


def test_account_calls(sdk):
    funds = ok(sdk.funds())["data"]
    for key in ("availablecash", "collateral", "m2mrealized", "m2munrealized", "utiliseddebits"):
        assert isinstance(funds[key], float)
    assert set(ok(sdk.orderbook())["data"]) == {"orders", "statistics"}
    assert ok(sdk.tradebook())["data"] == []
    assert ok(sdk.positionbook())["data"] == []
    hold = ok(sdk.holdings())["data"]
    assert {"symbol", "exchange", "product", "quantity", "pnl", "pnlpercent"} <= set(hold["holdings"][0])


def test_order_calls(sdk, broker):
    exp = broker.nearest_expiry()
    opt = ok(
        sdk.optionsymbol(underlying="NIFTY", exchange="NSE_INDEX", expiry_date=exp, offset="OTM2", option_type="CE")
    )
    assert {"symbol", "exchange", "lotsize", "tick_size", "freeze_qty", "underlying_ltp"} <= set(opt)
    symbol = opt["symbol"]
    placed = ok(
        sdk.placeorder(
            strategy="sdk",
            symbol=symbol,
            exchange="NFO",
            action="BUY",
            quantity=65,
            price_type="MARKET",
            product="NRML",
        )
    )
    status = ok(sdk.orderstatus(order_id=placed["orderid"], strategy="sdk"))["data"]
    assert status["order_status"] == "complete" and isinstance(status["average_price"], float)
    assert ok(sdk.openposition(strategy="sdk", symbol=symbol, exchange="NFO", product="NRML"))["quantity"] == 65
    smart = ok(
        sdk.placesmartorder(
            strategy="sdk", symbol=symbol, exchange="NFO", action="BUY", quantity=65, position_size=130, product="NRML"
        )
    )
    assert "orderid" in smart
    split = ok(
        sdk.splitorder(
            strategy="sdk", symbol=symbol, exchange="NFO", action="SELL", quantity=130, splitsize=65, product="NRML"
        )
    )
    assert [r["quantity"] for r in split["results"]] == [65, 65]
    basket = ok(
        sdk.basketorder(
            strategy="sdk",
            orders=[
                {
                    "symbol": "SBIN",
                    "exchange": "NSE",
                    "action": "BUY",
                    "quantity": 1,
                    "pricetype": "MARKET",
                    "product": "MIS",
                },
            ],
        )
    )
    assert basket["results"][0]["status"] == "success"
    options = ok(
        sdk.optionsorder(
            strategy="sdk",
            underlying="NIFTY",
            exchange="NSE_INDEX",
            expiry_date=exp,
            offset="ATM",
            option_type="PE",
            action="BUY",
            quantity=65,
            product="NRML",
        )
    )
    assert options["offset"] == "ATM" and options["symbol"].endswith("PE")
    ltp = ok(sdk.quotes(symbol=symbol, exchange="NFO"))["data"]["ltp"]
    limit = ok(
        sdk.placeorder(
            strategy="sdk",
            symbol=symbol,
            exchange="NFO",
            action="BUY",
            quantity=65,
            price_type="LIMIT",
            price=round(ltp / 2, 1),
            product="NRML",
        )
    )
    ok(
        sdk.modifyorder(
            order_id=limit["orderid"],
            strategy="sdk",
            symbol=symbol,
            action="BUY",
            exchange="NFO",
            price_type="LIMIT",
            product="NRML",
            quantity=65,
            price=round(ltp / 3, 1),
        )
    )
    ok(sdk.cancelorder(order_id=limit["orderid"], strategy="sdk"))
    ok(
        sdk.placeorder(
            strategy="sdk",
            symbol=symbol,
            exchange="NFO",
            action="BUY",
            quantity=65,
            price_type="LIMIT",
            price=round(ltp / 2, 1),
            product="NRML",
        )
    )
    assert len(ok(sdk.cancelallorder(strategy="sdk"))["canceled_orders"]) == 1
    ok(sdk.closeposition(strategy="sdk"))
    assert all(p["quantity"] == 0 for p in ok(sdk.positionbook())["data"])
    trades = ok(sdk.tradebook())["data"]
    assert {
        "action",
        "symbol",
        "exchange",
        "orderid",
        "product",
        "quantity",
        "average_price",
        "timestamp",
        "trade_value",
    } <= set(trades[0])


def test_market_data_calls(sdk, broker):
    exp = broker.nearest_expiry()
    q = ok(sdk.quotes(symbol="NIFTY", exchange="NSE_INDEX"))["data"]
    assert q["ltp"] > 0 and set(q) == {"open", "high", "low", "ltp", "ask", "bid", "prev_close", "volume", "oi"}
    mq = ok(
        sdk.multiquotes(symbols=[{"symbol": "SBIN", "exchange": "NSE"}, {"symbol": "NIFTY", "exchange": "NSE_INDEX"}])
    )
    assert [r["symbol"] for r in mq["results"]] == ["SBIN", "NIFTY"]
    depth = ok(sdk.depth(symbol="SBIN", exchange="NSE"))["data"]
    assert len(depth["bids"]) == 5 and {"totalbuyqty", "totalsellqty", "ltq"} <= set(depth)
    assert ok(sdk.symbol(symbol="SBIN", exchange="NSE"))["data"]["lotsize"] == 1
    assert ok(sdk.search(query="NIFTY FUT", exchange="NFO"))["data"]
    assert ok(sdk.intervals())["data"]["days"] == ["D"]
    expiries = ok(sdk.expiry(symbol="BANKNIFTY", exchange="NFO", instrumenttype="futures"))["data"]
    assert len(expiries) == 3 and all(len(e) == 9 and e[2] == "-" for e in expiries)
    chain = ok(sdk.optionchain(underlying="NIFTY", exchange="NSE_INDEX", expiry_date=exp, strike_count=5))
    assert len(chain["chain"]) == 11
    df = sdk.history(
        symbol="NIFTY", exchange="NSE_INDEX", interval="5m", start_date="2026-01-01", end_date="2030-12-31"
    )
    assert isinstance(df, pd.DataFrame) and list(df.columns) == ["open", "high", "low", "close", "volume", "oi"]
    assert str(df.index.tz) == "Asia/Kolkata"
    margin = ok(
        sdk.margin(
            positions=[
                {
                    "symbol": "SBIN",
                    "exchange": "NSE",
                    "action": "BUY",
                    "product": "MIS",
                    "pricetype": "MARKET",
                    "quantity": "10",
                }
            ]
        )
    )
    assert margin["data"]["total_margin_required"] > 0


def test_sdk_websocket_ltp_quote_depth(sdk, broker):
    option = broker.atm_option()
    got: dict[str, list] = {"ltp": [], "quote": [], "depth": []}
    lock = threading.Lock()

    def collect(kind):
        def cb(msg):
            with lock:
                got[kind].append(msg)

        return cb

    assert sdk.connect()
    try:
        sdk.subscribe_ltp([{"exchange": "NSE_INDEX", "symbol": "NIFTY"}], on_data_received=collect("ltp"))
        sdk.subscribe_quote([{"exchange": "NSE", "symbol": "SBIN"}], on_data_received=collect("quote"))
        sdk.subscribe_depth([{"exchange": "NFO", "symbol": option}], on_data_received=collect("depth"))
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and not all(len(v) >= 3 for v in got.values()):
            time.sleep(0.1)
        assert all(len(v) >= 3 for v in got.values()), {k: len(v) for k, v in got.items()}
        ltp = got["ltp"][-1]
        assert (ltp["symbol"], ltp["exchange"], ltp["mode"]) == ("NIFTY", "NSE_INDEX", 1)
        assert isinstance(ltp["data"]["ltp"], float) and isinstance(ltp["data"]["timestamp"], int)
        quote = got["quote"][-1]["data"]
        assert quote["ltp"] > 0 and quote["volume"] > 0 and quote["high"] >= quote["low"] > 0
        depth = got["depth"][-1]["data"]["depth"]
        assert len(depth["buy"]) == 5 and len(depth["sell"]) == 5
        assert depth["sell"][0]["price"] > depth["buy"][0]["price"]
        assert sdk.get_ltp()["ltp"]["NSE_INDEX"]["NIFTY"]["ltp"] > 0
    finally:
        sdk.disconnect()
