"""Every fault knob: what a client sees, and what the ledger says really executed."""

from __future__ import annotations

import time

import httpx
import pytest


@pytest.fixture
def order(broker):
    return {
        "apikey": broker.api_key,
        "strategy": "t",
        "symbol": broker.atm_option(),
        "exchange": "NFO",
        "action": "BUY",
        "quantity": 65,
        "pricetype": "MARKET",
        "product": "NRML",
    }


def arm(broker, **fault):
    fault.setdefault("endpoint", "placeorder")
    broker.sim("POST", "fault", fault)


def post(broker, body, timeout=10.0):
    with httpx.Client(base_url=broker.host, timeout=timeout) as c:
        return c.post("/api/v1/placeorder", json=body)


def test_latency_delays_but_executes_once(broker, order):
    arm(broker, kind="latency", value=300, count=1)
    start = time.monotonic()
    r = post(broker, order)
    assert r.status_code == 200 and time.monotonic() - start >= 0.3
    assert len(broker.ledger()) == 1
    start = time.monotonic()
    post(broker, order)
    assert time.monotonic() - start < 0.3  # count=1: the second call is not delayed


@pytest.mark.parametrize(
    ("code", "body"),
    [
        (500, {"status": "error", "message": "Failed to place order due to internal error"}),
        (429, {"message": "10 per 1 second"}),
        (403, {"status": "error", "message": "Invalid openalgo apikey"}),
        (502, None),
        (503, None),
    ],
)
def test_status_fault_answers_without_executing(broker, order, code, body):
    arm(broker, kind="status", value=code, count=1)
    r = post(broker, order)
    assert r.status_code == code
    if body is None:
        assert r.headers["content-type"].startswith("text/html") and str(code) in r.text
    else:
        assert r.json() == body
    assert broker.ledger() == []
    assert post(broker, order).status_code == 200  # the fault was used up
    assert len(broker.ledger()) == 1


def test_hang_outlasts_the_client_timeout_and_executes_nothing(broker, order):
    arm(broker, kind="hang", value=2, count=1)
    with pytest.raises(httpx.ReadTimeout):
        post(broker, order, timeout=0.5)
    time.sleep(2)
    assert broker.ledger() == []


def test_drop_after_execute_breaks_the_connection_after_the_order_executed(broker, order):
    arm(broker, kind="drop_after_execute", count=1)
    with pytest.raises((httpx.RemoteProtocolError, httpx.ReadError)):
        post(broker, order)
    ledger = broker.ledger()
    assert len(ledger) == 1 and ledger[0]["status"] == "complete"


def test_reset_breaks_the_connection_before_executing(broker, order):
    arm(broker, kind="reset", count=1)
    with pytest.raises((httpx.RemoteProtocolError, httpx.ReadError)):
        post(broker, order)
    assert broker.ledger() == []


def test_malformed_body_after_execution(broker, order):
    arm(broker, kind="malformed", count=1)
    r = post(broker, order)
    assert r.status_code == 200
    with pytest.raises(ValueError, match="Expecting|Unterminated|Extra data|Invalid"):
        r.json()
    assert len(broker.ledger()) == 1


def test_reject_gives_an_orderid_then_rejected_status(broker, order):
    arm(broker, kind="reject", value="RMS: margin exceeds", count=1)
    orderid = post(broker, order).json()["orderid"]
    data = broker.ok("orderstatus", strategy="t", orderid=orderid)["data"]
    assert data["order_status"] == "rejected"
    assert broker.ledger()[0]["status"] == "rejected"
    assert broker.ok("orderbook")["data"]["orders"][0]["rejection_reason"] == "RMS: margin exceeds"
    assert broker.ok("positionbook")["data"] == []


def test_partial_fill_leaves_the_rest_open(broker, order):
    arm(broker, kind="partial_fill", value=0.5, count=1)
    orderid = post(broker, dict(order, quantity=260)).json()["orderid"]
    data = broker.ok("orderstatus", strategy="t", orderid=orderid)["data"]
    assert (data["order_status"], data["filled_quantity"], data["pending_quantity"]) == ("open", 130, 130)
    assert broker.ok("positionbook")["data"][0]["quantity"] == 130


def test_late_average_price(broker, order):
    arm(broker, kind="late_average_price", value=2, count=1)
    orderid = post(broker, order).json()["orderid"]
    seen = [broker.ok("orderstatus", strategy="t", orderid=orderid)["data"] for _ in range(3)]
    assert [s["order_status"] for s in seen] == ["complete"] * 3
    assert [s["average_price"] > 0 for s in seen] == [False, False, True]


def test_fault_until_cleared_and_wildcard(broker, order):
    arm(broker, endpoint="*", kind="status", value=503)
    assert post(broker, order).status_code == 503
    assert broker.api("funds").status_code == 503
    assert broker.http.get("/_sim/fault").json()["faults"][0]["kind"] == "status"
    broker.sim("DELETE", "fault")
    assert broker.api("funds").status_code == 200


@pytest.mark.parametrize(
    "fault",
    [
        {"kind": "explode"},
        {"kind": "status", "value": 418},
        {"kind": "latency", "endpoint": "nope"},
        {"kind": "latency", "count": 0},
    ],
)
def test_bad_fault_requests_are_refused(broker, fault):
    r = broker.http.post("/_sim/fault", json=fault)
    assert r.status_code == 400 and r.json()["status"] == "error"
    assert broker.http.get("/_sim/fault").json()["faults"] == []


def test_expired_session_answers_403_except_key_only_endpoints(broker, order):
    broker.sim("POST", "session", {"expired": True})
    for endpoint, body in [
        ("ping", {}),
        ("funds", {}),
        ("placeorder", order),
        ("quotes", {"symbol": "SBIN", "exchange": "NSE"}),
    ]:
        r = broker.api(endpoint, **body)
        assert (r.status_code, r.json()["message"]) == (403, "Invalid openalgo apikey"), endpoint
    assert broker.api("search", query="SBIN").status_code == 200
    assert broker.api("expiry", symbol="NIFTY", exchange="NFO", instrumenttype="options").status_code == 200
    broker.sim("POST", "session", {"expired": False})
    assert broker.api("ping").status_code == 200
    assert broker.ledger() == []


def test_price_control_drives_prices_exactly(brokers):
    a, b = brokers[0], brokers[1]
    opt = a.atm_option()
    a.sim("POST", "market", {"paused": True})
    assert a.sim("POST", "price", {"symbol": opt, "exchange": "NFO", "ltp": 150.25})["ltp"] == 150.25
    # One market shared by every instance.
    assert b.ok("quotes", symbol=opt, exchange="NFO")["data"]["ltp"] == 150.25
    before = a.ok("quotes", symbol="NIFTY", exchange="NSE_INDEX")["data"]["ltp"]
    moved = a.sim("POST", "price", {"underlying": "NIFTY", "move_pct": -1.5})
    assert moved["ltp"] == pytest.approx(before * 0.985, abs=0.05)
    assert a.ok("quotes", symbol=opt, exchange="NFO")["data"]["ltp"] < 150.25
    r = a.http.post("/_sim/price", json={"symbol": opt, "exchange": "NFO", "ltp": -3})
    assert r.status_code == 400


def test_resting_limit_fills_after_a_price_move(broker):
    opt = broker.atm_option()
    broker.sim("POST", "market", {"paused": True})
    ltp = broker.ok("quotes", symbol=opt, exchange="NFO")["data"]["ltp"]
    oid = broker.ok(
        "placeorder",
        strategy="t",
        symbol=opt,
        exchange="NFO",
        action="BUY",
        quantity=65,
        pricetype="LIMIT",
        price=round(ltp - 5, 1),
        product="NRML",
    )["orderid"]
    assert broker.ok("orderstatus", strategy="t", orderid=oid)["data"]["order_status"] == "open"
    broker.sim("POST", "price", {"symbol": opt, "exchange": "NFO", "ltp": round(ltp - 6, 1)})
    data = broker.ok("orderstatus", strategy="t", orderid=oid)["data"]
    assert (data["order_status"], data["average_price"]) == ("complete", round(ltp - 5, 1))


def test_reset_clears_the_book(broker, order):
    post(broker, order)
    broker.sim("POST", "reset")
    assert broker.ledger() == [] and broker.ok("positionbook")["data"] == []


def test_an_instance_can_be_stopped_and_started_from_another(brokers):
    a, b = brokers[0], brokers[1]
    assert a.sim("POST", "instance", {"name": b.info["name"], "action": "stop"})["stopped"] is True
    with pytest.raises(httpx.ConnectError):
        httpx.post(f"{b.host}/api/v1/ping", json={"apikey": b.api_key}, timeout=2)
    assert a.http.post("/_sim/instance", json={"name": a.info["name"], "action": "stop"}).status_code == 400
    a.sim("POST", "instance", {"name": b.info["name"], "action": "start"})
    assert b.ok("ping")["data"]["message"] == "pong"
