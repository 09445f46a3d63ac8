"""OpenAlgo WebSocket frames → typed values, and the messages we send (pure, stdlib only).

Frame facts (openalgo-protocol.md §5): market data arrives as
`{"type":"market_data","symbol","exchange","mode":<int>,"data":{...}}` with `ltp` and a
millisecond `timestamp`; errors carry no `type` but `status: "error"` and a `code`; acks are
`type` auth/subscribe/unsubscribe. Numbers may be JSON numbers or numeric strings, and a
broken feed can send 0, negative or NaN prices: those are reported as invalid, never as prices.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field

LTP, QUOTE, DEPTH = 1, 2, 3


@dataclass(frozen=True)
class Tick:
    symbol: str
    exchange: str
    ltp: float
    ts_ms: int
    data: dict = field(default_factory=dict, compare=False)

    @property
    def key(self) -> str:
        return f"{self.exchange}:{self.symbol}"


@dataclass(frozen=True)
class BadTick:
    """A market_data frame whose price is unusable (0, negative, NaN, missing)."""

    symbol: str
    exchange: str
    raw_ltp: object


@dataclass(frozen=True)
class Ack:
    type: str
    status: str
    body: dict


@dataclass(frozen=True)
class ErrorFrame:
    code: str
    message: str


@dataclass(frozen=True)
class Unknown:
    body: object


Frame = Tick | BadTick | Ack | ErrorFrame | Unknown


def number(value) -> float | None:
    """A finite float from a JSON number or numeric string; None otherwise."""
    if isinstance(value, bool) or value is None:
        return None
    try:
        f = float(value)
    except (TypeError, ValueError):
        return None
    return f if math.isfinite(f) else None


def valid_price(value) -> float | None:
    """A usable price: a finite number strictly above zero."""
    f = number(value)
    return f if f is not None and f > 0 else None


def parse(text: str | bytes) -> Frame:
    try:
        msg = json.loads(text)
    except ValueError:
        return Unknown(text)
    if not isinstance(msg, dict):
        return Unknown(msg)
    kind = msg.get("type")
    if kind == "market_data":
        data = msg.get("data") if isinstance(msg.get("data"), dict) else {}
        symbol, exchange = str(msg.get("symbol", "")), str(msg.get("exchange", ""))
        ltp = valid_price(data.get("ltp"))
        if ltp is None or not symbol or not exchange:
            return BadTick(symbol, exchange, data.get("ltp"))
        ts = number(data.get("timestamp")) or number(data.get("ltt")) or 0
        return Tick(symbol, exchange, ltp, int(ts), data)
    if kind is None and msg.get("status") == "error":
        return ErrorFrame(str(msg.get("code", "")), str(msg.get("message", "")))
    if isinstance(kind, str):
        return Ack(kind, str(msg.get("status", "")), msg)
    return Unknown(msg)


def authenticate(api_key: str) -> str:
    return json.dumps({"action": "authenticate", "api_key": api_key})


def subscribe(keys: list[str], mode: int) -> str:
    """`keys` are "EXCHANGE:SYMBOL"; integer modes, the array form."""
    return json.dumps({"action": "subscribe", "mode": mode, "depth": 5, "symbols": [split(k) for k in keys]})


def unsubscribe(keys: list[str], mode: int) -> str:
    # In the array form OpenAlgo reads the mode per item and ignores a top-level one.
    return json.dumps({"action": "unsubscribe", "symbols": [{**split(k), "mode": mode} for k in keys]})


def split(key: str) -> dict:
    exchange, _, symbol = key.partition(":")
    return {"symbol": symbol, "exchange": exchange}


def quote_fields(data: dict) -> dict:
    """The browser-facing subset of a tick's data: prices, change, bid/ask from depth, volume, OI."""
    out: dict = {}
    for src, dst in (
        ("ltp", "ltp"),
        ("open", "open"),
        ("high", "high"),
        ("low", "low"),
        ("close", "prev_close"),
        ("volume", "volume"),
        ("oi", "oi"),
    ):
        v = number(data.get(src))
        if v is not None:
            out[dst] = v
    if "ltp" in out and out.get("prev_close"):
        out["change"] = round(out["ltp"] - out["prev_close"], 2)
    depth = data.get("depth")
    if isinstance(depth, dict):
        buy, sell = depth.get("buy") or [], depth.get("sell") or []
        if buy:
            out["bid"], out["bid_qty"] = number(buy[0].get("price")), number(buy[0].get("quantity"))
        if sell:
            out["ask"], out["ask_qty"] = number(sell[0].get("price")), number(sell[0].get("quantity"))
        out["depth"] = {
            "buy": [[number(x.get("price")), number(x.get("quantity"))] for x in buy[:5]],
            "sell": [[number(x.get("price")), number(x.get("quantity"))] for x in sell[:5]],
        }
    return out
