"""The WebSocket feed, frame by frame, as OpenAlgo's proxy speaks it."""

from __future__ import annotations

import json
import math
import threading
import time

import pytest
import websocket


def connect(broker, auth: bool = True) -> websocket.WebSocket:
    ws = websocket.create_connection(broker.ws_url, timeout=5)
    if auth:
        ws.send(json.dumps({"action": "authenticate", "api_key": broker.api_key}))
        reply = json.loads(ws.recv())
        assert reply["type"] == "auth" and reply["status"] == "success", reply
    return ws


def recv(ws, want=None, timeout=5.0) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ws.settimeout(max(deadline - time.monotonic(), 0.01))
        msg = json.loads(ws.recv())
        if want is None or want(msg):
            return msg
    raise AssertionError("no matching frame")


def market_frames(ws, n, symbol=None, timeout=5.0) -> list[dict]:
    out = []
    while len(out) < n:
        out.append(
            recv(ws, lambda m: m.get("type") == "market_data" and (symbol is None or m["symbol"] == symbol), timeout)
        )
    return out


def drain(ws, limit: int = 50) -> None:
    for _ in range(limit):
        ws.recv()


def test_auth_reply_and_errors_without_type(broker):
    ws = connect(broker, auth=False)
    ws.send(json.dumps({"action": "subscribe", "symbols": [{"symbol": "SBIN", "exchange": "NSE"}]}))
    assert json.loads(ws.recv()) == {
        "status": "error",
        "code": "NOT_AUTHENTICATED",
        "message": "You must authenticate first",
    }
    ws.send(json.dumps({"action": "authenticate", "api_key": "0" * 64}))
    assert json.loads(ws.recv()) == {"status": "error", "code": "AUTHENTICATION_ERROR", "message": "Invalid API key"}
    ws.send(json.dumps({"action": "authenticate", "apikey": broker.api_key}))
    reply = json.loads(ws.recv())
    assert reply == {
        "type": "auth",
        "status": "success",
        "message": "Authentication successful",
        "broker": broker.info["broker"],
        "user_id": "admin",
        "supported_features": {"ltp": True, "quote": True, "depth": True},
    }
    ws.send("not json")
    assert json.loads(ws.recv())["code"] == "INVALID_JSON"
    ws.send(json.dumps({"action": "dance"}))
    assert json.loads(ws.recv()) == {"status": "error", "code": "INVALID_ACTION", "message": "Invalid action: dance"}
    ws.send(json.dumps({"action": "subscribe", "symbols": [{"symbol": "SBIN", "exchange": "NSE"}], "mode": 7}))
    assert json.loads(ws.recv())["code"] == "INVALID_MODE"
    ws.send(json.dumps({"action": "subscribe", "symbols": []}))
    assert json.loads(ws.recv())["code"] == "INVALID_PARAMETERS"
    ws.close()


def test_subscribe_ack_and_frames_per_mode(broker):
    option = broker.atm_option()
    ws = connect(broker)
    ws.send(
        json.dumps(
            {
                "action": "subscribe",
                "symbols": [{"symbol": "NIFTY", "exchange": "NSE_INDEX"}, {"symbol": "XYZ", "exchange": "NSE"}],
                "mode": 1,
                "request_id": "r1",
            }
        )
    )
    ack = recv(ws, lambda m: m.get("type") == "subscribe")
    assert ack["status"] == "partial" and ack["request_id"] == "r1"
    assert ack["subscriptions"][0] == {
        "symbol": "NIFTY",
        "exchange": "NSE_INDEX",
        "status": "success",
        "mode": "LTP",
        "depth": 5,
        "broker": broker.info["broker"],
    }
    assert ack["subscriptions"][1]["status"] == "error"
    ltp = market_frames(ws, 1, "NIFTY")[0]
    assert ltp["mode"] == 1 and ltp["broker"] == broker.info["broker"]
    assert set(ltp["data"]) == {"symbol", "exchange", "mode", "ltp", "ltt", "timestamp"}
    ws.send(json.dumps({"action": "subscribe", "symbol": "SBIN", "exchange": "NSE", "mode": "Quote"}))
    assert recv(ws, lambda m: m.get("type") == "subscribe")["subscriptions"][0]["mode"] == "Quote"
    quote = market_frames(ws, 1, "SBIN")[0]
    assert {
        "open",
        "high",
        "low",
        "close",
        "volume",
        "average_price",
        "total_buy_quantity",
        "total_sell_quantity",
        "last_trade_quantity",
        "oi",
    } <= set(quote["data"])
    ws.send(json.dumps({"action": "subscribe", "symbols": [{"symbol": option, "exchange": "NFO"}], "mode": 3}))
    recv(ws, lambda m: m.get("type") == "subscribe")
    depth = market_frames(ws, 1, option)[0]["data"]["depth"]
    assert [len(depth["buy"]), len(depth["sell"])] == [5, 5] and set(depth["buy"][0]) == {"price", "quantity", "orders"}
    ws.close()


def test_no_snapshot_on_subscribe(broker):
    ws = connect(broker)
    broker.sim("POST", "ws", {"action": "stall"})
    ws.send(json.dumps({"action": "subscribe", "symbols": [{"symbol": "SBIN", "exchange": "NSE"}], "mode": 1}))
    recv(ws, lambda m: m.get("type") == "subscribe")
    ws.settimeout(1.0)
    with pytest.raises(websocket.WebSocketTimeoutException):
        ws.recv()  # nothing until the next tick is delivered
    broker.sim("POST", "ws", {"action": "resume"})
    assert market_frames(ws, 1, "SBIN")[0]["data"]["ltp"] > 0
    ws.close()


def test_unsubscribe_reads_mode_per_item_and_ignores_top_level(broker):
    ws = connect(broker)
    for mode in (1, 2):
        ws.send(json.dumps({"action": "subscribe", "symbols": [{"symbol": "SBIN", "exchange": "NSE"}], "mode": mode}))
        recv(ws, lambda m: m.get("type") == "subscribe")
    ws.send(
        json.dumps({"action": "unsubscribe", "mode": 2, "symbols": [{"symbol": "SBIN", "exchange": "NSE", "mode": 1}]})
    )
    ack = recv(ws, lambda m: m.get("type") == "unsubscribe")
    assert ack["status"] == "success" and ack["successful"][0]["symbol"] == "SBIN"
    modes = {f["mode"] for f in market_frames(ws, 6, "SBIN")}
    assert modes == {2}  # the quote subscription is still there, the LTP one is gone
    ws.send(json.dumps({"action": "unsubscribe", "symbols": [{"symbol": "SBIN", "exchange": "NSE"}]}))  # default 2
    assert recv(ws, lambda m: m.get("type") == "unsubscribe")["status"] == "success"
    assert broker.sim("GET", "ws")["subscriptions"] == []
    ws.close()


def test_order_updates_stream(broker):
    ws = connect(broker)
    ws.send(json.dumps({"action": "subscribe_orders"}))
    assert recv(ws)["type"] == "subscribe_orders"
    oid = broker.ok("placeorder", strategy="t", symbol="SBIN", exchange="NSE", action="BUY", quantity=2, product="MIS")[
        "orderid"
    ]
    updates = [recv(ws, lambda m: m.get("type") == "order_update") for _ in range(2)]
    assert [u["order_status"] for u in updates] == ["open", "complete"]
    done = updates[-1]
    assert (done["orderid"], done["filled_quantity"], done["pending_quantity"]) == (oid, 2, 0)
    assert done["average_price"] > 0 and done["mode"] == "analyze"
    ws.close()


@pytest.mark.parametrize(("action", "check"), [("zero_prices", lambda v: v == 0), ("nan_prices", math.isnan)])
def test_bad_price_faults(broker, action, check):
    ws = connect(broker)
    ws.send(json.dumps({"action": "subscribe", "symbols": [{"symbol": "SBIN", "exchange": "NSE"}], "mode": 1}))
    recv(ws, lambda m: m.get("type") == "subscribe")
    broker.sim("POST", "ws", {"action": action})
    frame = market_frames(ws, 2, "SBIN")[-1]
    assert check(frame["data"]["ltp"])
    assert broker.ok("quotes", symbol="SBIN", exchange="NSE")["data"]["ltp"] > 0  # REST unaffected
    broker.sim("POST", "ws", {"action": "resume"})
    time.sleep(0.5)
    assert market_frames(ws, 1, "SBIN")[-1]["data"]["ltp"] > 0
    ws.close()


def test_close_drops_connections_and_down_refuses_them(broker):
    ws = connect(broker)
    assert broker.sim("GET", "ws")["authenticated"] == 1
    broker.sim("POST", "ws", {"action": "close"})
    with pytest.raises((websocket.WebSocketConnectionClosedException, ConnectionError, OSError)):
        drain(ws)
    ws2 = connect(broker)  # reconnecting works at once
    ws2.close()
    broker.sim("POST", "ws", {"action": "down"})
    with pytest.raises(ConnectionRefusedError):
        websocket.create_connection(broker.ws_url, timeout=2)
    broker.sim("POST", "ws", {"action": "up"})
    connect(broker).close()


def test_json_ping_and_broker_info(broker):
    ws = connect(broker)
    ws.send(json.dumps({"action": "ping", "timestamp": 123, "_pingId": 7}))
    pong = recv(ws, lambda m: m.get("type") == "pong")
    assert pong["client_timestamp"] == 123 and pong["_pingId"] == 7 and pong["status"] == "success"
    ws.send(json.dumps({"action": "get_broker_info"}))
    assert recv(ws, lambda m: m.get("type") == "broker_info")["adapter_status"] == "connected"
    ws.close()


@pytest.mark.slow
def test_auth_deadline_4401_and_protocol_pings(broker):
    """Unauthenticated sockets are closed with 4401 after 15 s; live ones get RFC 6455 pings every 20 s."""
    result = {}

    def unauthenticated():
        ws = websocket.create_connection(broker.ws_url, timeout=20)
        start = time.monotonic()
        op, frame = ws.recv_data_frame(True)
        result["close"] = (op, int.from_bytes(frame.data[:2], "big"), frame.data[2:].decode(), time.monotonic() - start)

    t = threading.Thread(target=unauthenticated)
    t.start()
    ws = connect(broker)
    ws.settimeout(25)
    start = time.monotonic()
    op, _ = ws.recv_data_frame(True)
    ping_after = time.monotonic() - start
    t.join()
    assert op == websocket.ABNF.OPCODE_PING and 15 < ping_after < 22
    opcode, code, reason, after = result["close"]
    assert (opcode, code, reason) == (websocket.ABNF.OPCODE_CLOSE, 4401, "auth timeout")
    assert 14.5 < after < 17
    ws.close()


def test_session_expired_blocks_feed_auth(broker):
    broker.sim("POST", "session", {"expired": True})
    ws = connect(broker, auth=False)
    ws.send(json.dumps({"action": "authenticate", "api_key": broker.api_key}))
    assert json.loads(ws.recv())["code"] == "BROKER_ERROR"
    ws.close()
