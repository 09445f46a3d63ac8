"""OpenAlgo REST v1 as brokersim serves it: shapes, validation, status codes, rate limits."""

from __future__ import annotations

import concurrent.futures as cf
import time

import httpx
import pytest


def test_ping_and_key_checks(broker):
    assert broker.ok("ping")["data"] == {"message": "pong", "broker": broker.info["broker"]}
    r = broker.api("ping", apikey="0" * 64)
    assert (r.status_code, r.json()) == (403, {"status": "error", "message": "Invalid openalgo apikey"})


def _order(broker, **extra):
    body = {
        "strategy": "t",
        "symbol": broker.atm_option(),
        "exchange": "NFO",
        "action": "BUY",
        "quantity": 65,
        "pricetype": "MARKET",
        "product": "NRML",
    }
    body.update(extra)
    return {k: v for k, v in body.items() if v is not None}


# (endpoint, body changes, status, message) — `message` is the exact body message; order writers
# send marshmallow's dict as its Python repr string, read endpoints as a JSON object.
ERRORS = [
    ("placeorder", {"symbol": None}, 400, "{'symbol': ['Missing data for required field.']}"),
    ("placeorder", {"colour": "red"}, 400, "{'colour': ['Unknown field.']}"),
    ("placeorder", {"action": "HOLD"}, 400, "{'action': ['Must be one of: BUY, SELL, buy, sell.']}"),
    ("placeorder", {"quantity": "abc"}, 400, "{'quantity': ['Not a valid number.']}"),
    ("placeorder", {"quantity": 0}, 400, "{'quantity': ['Quantity must be a positive number.']}"),
    (
        "placeorder",
        {"exchange": "NYSE"},
        400,
        "{'exchange': ['Must be one of: NSE, NFO, CDS, BSE, BFO, BCD, MCX, NCDEX, NCO, NSE_INDEX, BSE_INDEX, "
        "MCX_INDEX, GLOBAL_INDEX, CRYPTO.']}",
    ),
    ("placeorder", {"quantity": 60}, 400, "Quantity must be in multiples of lot size 65 for {symbol}"),
    ("placeorder", {"quantity": 65 * 20, "action": "SELL"}, 400, None),  # insufficient funds (checked below)
    ("placeorder", {"apikey": "f" * 64}, 403, "Invalid openalgo apikey"),
    (
        "placeorder",
        {"apikey": "f" * 64, "symbol": None},
        400,  # validation comes before the key check
        "{'symbol': ['Missing data for required field.']}",
    ),
    ("funds", {"extra": 1}, 400, {"extra": ["Unknown field."]}),
    (
        "quotes",
        {"symbol": "NOPE", "exchange": "NSE"},
        400,
        "Symbol 'NOPE' not found for exchange 'NSE'. Please verify the symbol name and ensure master contracts "
        "are downloaded.",
    ),
    ("quotes", {"exchange": None, "symbol": "SBIN"}, 400, {"exchange": ["Missing data for required field."]}),
    ("orderstatus", {"orderid": "123"}, 404, "Order 123 not found"),
    ("orderstatus", {"orderid": "123", "strategy": None}, 400, "{'strategy': ['Missing data for required field.']}"),
    (
        "history",
        {"symbol": "SBIN", "exchange": "NSE", "interval": "7m", "start_date": "2026-01-01", "end_date": "2026-01-02"},
        400,
        {"interval": [None]},
    ),
]


@pytest.mark.parametrize(("endpoint", "changes", "status", "message"), ERRORS)
def test_bad_requests_get_openalgo_errors(brokers, endpoint, changes, status, message):
    broker = brokers[2]  # a 5 lakh account: 20 lots of a NIFTY short do not fit
    if endpoint == "placeorder":
        body = _order(broker, **changes)
    else:
        body = {"strategy": "t", **changes} if endpoint == "orderstatus" else dict(changes)
        body = {k: v for k, v in body.items() if v is not None}
    if "apikey" not in body:
        body["apikey"] = broker.api_key
    r = broker.http.post(f"/api/v1/{endpoint}", json=body)
    assert r.status_code == status, r.text
    out = r.json()
    assert out["status"] == "error"
    if message is None:
        assert out["message"].startswith("Insufficient funds. Required margin:")
    elif isinstance(message, dict) and message.get("interval") == [None]:
        assert list(out["message"]) == ["interval"]
    else:
        assert out["message"] == (
            message.replace("{symbol}", str(body.get("symbol"))) if isinstance(message, str) else message
        )
    assert broker.ledger() == []  # nothing executed


def test_numbers_as_strings_and_lower_case_action_are_accepted(broker):
    out = broker.ok("placeorder", **_order(broker, quantity="65", action="buy", price="0"))
    assert out["orderid"] and len(out["orderid"]) == 14
    assert broker.ledger()[0]["action"] == "BUY"


def test_non_json_body_is_a_500(broker):
    r = broker.http.post("/api/v1/funds", content=b"apikey=x", headers={"content-type": "text/plain"})
    assert r.status_code == 500 and r.json()["status"] == "error"


def test_body_that_is_not_an_object(broker):
    r = broker.http.post("/api/v1/placeorder", json=[1, 2])
    assert (r.status_code, r.json()["message"]) == (400, "{'_schema': ['Invalid input type.']}")


def test_trailing_slash_is_optional(broker):
    assert broker.http.post("/api/v1/ping/", json={"apikey": broker.api_key}).status_code == 200


def test_twelve_orders_in_one_second_ten_accepted_two_limited(broker):
    body = _order(broker, symbol="SBIN", exchange="NSE", quantity=1, product="MIS")
    body["apikey"] = broker.api_key
    with httpx.Client(base_url=broker.host, timeout=10) as c:
        c.post("/api/v1/ping", json={"apikey": broker.api_key})  # warm the connection
        start = time.monotonic()
        with cf.ThreadPoolExecutor(12) as pool:
            responses = list(pool.map(lambda _: c.post("/api/v1/placeorder", json=body), range(12)))
        elapsed = time.monotonic() - start
    assert elapsed < 1.0
    codes = sorted(r.status_code for r in responses)
    assert codes == [200] * 10 + [429] * 2
    assert [r.json() for r in responses if r.status_code == 429] == [{"message": "10 per 1 second"}] * 2
    assert len(broker.ledger()) == 10


def test_each_route_has_its_own_bucket(broker):
    body = _order(broker, symbol="SBIN", exchange="NSE", quantity=1, product="MIS")
    for _ in range(10):
        broker.ok("placeorder", **body)
    assert broker.api("placeorder", **body).status_code == 429
    assert broker.api("funds").status_code == 200


def test_market_data_shapes(broker):
    q = broker.ok("quotes", symbol="NIFTY", exchange="NSE_INDEX")["data"]
    assert set(q) == {"open", "high", "low", "ltp", "ask", "bid", "prev_close", "volume", "oi"}
    opt = broker.atm_option()
    d = broker.ok("depth", symbol=opt, exchange="NFO")["data"]
    assert len(d["bids"]) == 5 and len(d["asks"]) == 5 and d["asks"][0]["price"] > d["bids"][0]["price"]
    mq = broker.ok("multiquotes", symbols=[{"symbol": opt, "exchange": "NFO"}, {"symbol": "BAD", "exchange": "NSE"}])
    assert "data" in mq["results"][0] and "error" in mq["results"][1]
    info = broker.ok("symbol", symbol=opt, exchange="NFO")["data"]
    assert (info["lotsize"], info["freeze_qty"], info["instrumenttype"]) == (65, 1800, "CE")
    found = broker.ok("search", query=opt)
    assert found["data"][0]["symbol"] == opt and found["message"] == "Found 1 matching symbols"
    assert broker.ok("intervals")["data"]["minutes"] == ["1m", "3m", "5m", "10m", "15m", "30m"]


def test_optionchain_around_atm(broker):
    chain = broker.ok(
        "optionchain",
        underlying="NIFTY",
        exchange="NSE_INDEX",
        expiry_date=broker.nearest_expiry(),
        strike_count=10,
        with_greeks=True,
    )
    assert len(chain["chain"]) == 21
    atm = chain["chain"][10]
    assert atm["strike"] == chain["atm_strike"] and atm["ce"]["label"] == "ATM" and atm["pe"]["label"] == "ATM"
    assert chain["chain"][0]["ce"]["label"] == "ITM10" and chain["chain"][0]["pe"]["label"] == "OTM10"
    assert 0 < atm["ce"]["delta"] < 1 and -1 < atm["pe"]["delta"] < 0


def test_splitorder_respects_the_freeze_quantity(brokers):
    broker = brokers[3]  # 50 lakh
    opt = broker.atm_option("PE", "OTM5")
    out = broker.ok(
        "splitorder",
        strategy="t",
        symbol=opt,
        exchange="NFO",
        action="BUY",
        quantity=65 * 30,
        splitsize=1755,
        product="NRML",
    )
    assert [r["quantity"] for r in out["results"]] == [1755, 195]
    assert all(r["status"] == "success" for r in out["results"])
    assert broker.ok("openposition", strategy="t", symbol=opt, exchange="NFO", product="NRML")["quantity"] == "1950"


def test_smart_basket_modify_cancel_close(broker):
    opt = broker.atm_option()
    smart = broker.ok("placesmartorder", **_order(broker, symbol=opt, position_size=130))
    assert smart["orderid"]
    assert broker.ok("placesmartorder", **_order(broker, symbol=opt, position_size=130))["message"] == (
        "Positions Already Matched. No Action needed."
    )
    basket = broker.ok(
        "basketorder",
        strategy="t",
        orders=[
            {"symbol": opt, "exchange": "NFO", "action": "SELL", "quantity": "65", "product": "NRML"},
            {"symbol": "SBIN", "exchange": "NSE", "action": "BUY", "quantity": "1", "product": "MIS"},
        ],
    )
    assert [r["symbol"] for r in basket["results"]] == ["SBIN", opt]  # BUYs first
    ltp = broker.ok("quotes", symbol=opt, exchange="NFO")["data"]["ltp"]
    limit = broker.ok("placeorder", **_order(broker, symbol=opt, pricetype="LIMIT", price=round(ltp * 0.5, 1)))
    status = broker.ok("orderstatus", strategy="t", orderid=limit["orderid"])["data"]
    assert status["order_status"] == "open" and status["price_type"] == "LIMIT"
    broker.ok(
        "modifyorder",
        strategy="t",
        orderid=limit["orderid"],
        symbol=opt,
        exchange="NFO",
        action="BUY",
        product="NRML",
        pricetype="LIMIT",
        price=round(ltp * 0.4, 1),
        quantity=130,
        disclosed_quantity=0,
        trigger_price=0,
    )
    assert broker.ok("orderstatus", strategy="t", orderid=limit["orderid"])["data"]["quantity"] == 130
    cancelled = broker.ok("cancelallorder", strategy="t")
    assert cancelled["canceled_orders"] == [limit["orderid"]]
    r = broker.api("cancelorder", strategy="t", orderid=limit["orderid"])
    assert (r.status_code, r.json()["message"]) == (400, "Cannot cancel order in cancelled status")
    closed = broker.ok("closeposition", strategy="t")
    assert closed["closed_positions"] == 2
    assert all(p["quantity"] == 0 for p in broker.ok("positionbook")["data"])


def test_sandbox_and_live_profiles(broker, live_broker):
    for b in (broker, live_broker):
        b.ok("placeorder", **_order(b))
    sandbox_funds = broker.ok("funds")
    live_funds = live_broker.ok("funds")
    assert sandbox_funds["mode"] == "analyze" and isinstance(sandbox_funds["data"]["availablecash"], float)
    assert "mode" not in live_funds and isinstance(live_funds["data"]["availablecash"], str)
    assert set(live_funds["data"]) == {"availablecash", "collateral", "m2mrealized", "m2munrealized", "utiliseddebits"}
    live_row = live_broker.ok("positionbook")["data"][0]
    assert all(isinstance(live_row[k], str) for k in ("quantity", "average_price", "ltp", "pnl"))
    book = live_broker.ok("orderbook")["data"]
    assert book["orders"][0]["price"] == 0.0 and isinstance(book["orders"][0]["quantity"], str)
    assert "total_trigger_pending_orders" not in book["statistics"]
    trade = live_broker.ok("tradebook")["data"][0]
    assert len(trade["timestamp"]) == 8  # HH:MM:SS


def test_holdings_and_margin(broker):
    h = broker.ok("holdings")["data"]
    assert h["holdings"] and set(h["statistics"]) == {
        "totalholdingvalue",
        "totalinvvalue",
        "totalprofitandloss",
        "totalpnlpercentage",
    }
    opt = broker.atm_option("PE", "OTM3")
    m = broker.ok(
        "margin",
        positions=[
            {
                "symbol": opt,
                "exchange": "NFO",
                "action": "SELL",
                "quantity": "65",
                "product": "NRML",
                "pricetype": "MARKET",
            }
        ],
    )["data"]
    assert m["total_margin_required"] > 100_000
    assert m["span_margin"] + m["exposure_margin"] == pytest.approx(m["total_margin_required"], abs=0.02)


def test_history_shape(broker):
    data = broker.ok(
        "history",
        symbol="NIFTY",
        exchange="NSE_INDEX",
        interval="15m",
        start_date="2026-01-01",
        end_date="2030-01-01",
        source="api",
    )["data"]
    assert data and set(data[0]) == {"timestamp", "open", "high", "low", "close", "volume", "oi"}
    assert isinstance(data[0]["timestamp"], int)
    assert all(b["low"] <= min(b["open"], b["close"]) <= max(b["open"], b["close"]) <= b["high"] for b in data)
