"""Frames recorded from brokersim/OpenAlgo's proxy, parsed (pure)."""

import json
import math

import pytest

from openalgo_client import protocol as p

LTP_FRAME = (
    '{"type":"market_data","symbol":"INFY","exchange":"NSE","mode":1,"broker":"angel","data":'
    '{"ltp":1606.0,"ltt":1765781293000,"symbol":"INFY","exchange":"NSE","mode":1,"timestamp":1765781294990}}'
)


def test_ltp_frame():
    f = p.parse(LTP_FRAME)
    assert f == p.Tick("INFY", "NSE", 1606.0, 1765781294990)
    assert f.key == "NSE:INFY"


@pytest.mark.parametrize("ltp", [0, 0.0, -1.5, "NaN", None, "abc", math.inf, True])
def test_unusable_prices_are_bad_ticks(ltp):
    frame = {"type": "market_data", "symbol": "SBIN", "exchange": "NSE", "mode": 1, "data": {"ltp": ltp}}
    assert isinstance(p.parse(json.dumps(frame)), p.BadTick)


def test_nan_token_as_python_servers_send_it():
    assert isinstance(p.parse('{"type":"market_data","symbol":"S","exchange":"NSE","data":{"ltp":NaN}}'), p.BadTick)


def test_numeric_strings_are_accepted():
    f = p.parse('{"type":"market_data","symbol":"S","exchange":"NSE","data":{"ltp":"101.5","timestamp":"5"}}')
    assert (f.ltp, f.ts_ms) == (101.5, 5)


def test_error_frames_have_no_type():
    f = p.parse('{"status":"error","code":"NOT_AUTHENTICATED","message":"You must authenticate first"}')
    assert f == p.ErrorFrame("NOT_AUTHENTICATED", "You must authenticate first")


def test_acks_and_junk():
    assert p.parse('{"type":"auth","status":"success"}').type == "auth"
    assert isinstance(p.parse("not json"), p.Unknown)
    assert isinstance(p.parse("[1]"), p.Unknown)


def test_outgoing_messages():
    assert json.loads(p.subscribe(["NFO:NIFTY25NOV2524000CE", "NSE_INDEX:NIFTY"], 3)) == {
        "action": "subscribe",
        "mode": 3,
        "depth": 5,
        "symbols": [{"symbol": "NIFTY25NOV2524000CE", "exchange": "NFO"}, {"symbol": "NIFTY", "exchange": "NSE_INDEX"}],
    }
    assert json.loads(p.unsubscribe(["NSE:SBIN"], 2)) == {
        "action": "unsubscribe",
        "symbols": [{"symbol": "SBIN", "exchange": "NSE", "mode": 2}],
    }


def test_quote_fields_from_a_depth_tick():
    data = {
        "ltp": 105.0,
        "close": 100.0,
        "volume": 1200,
        "oi": 650,
        "depth": {
            "buy": [{"price": 104.9, "quantity": 130, "orders": 2}],
            "sell": [{"price": 105.1, "quantity": 65, "orders": 1}],
        },
    }
    q = p.quote_fields(data)
    assert (q["change"], q["bid"], q["bid_qty"], q["ask"], q["ask_qty"]) == (5.0, 104.9, 130, 105.1, 65)
    assert q["depth"]["buy"] == [[104.9, 130]]
