"""The WebSocket feed of one simulated instance, speaking OpenAlgo's proxy protocol.

Frames are written straight to the transport, pre-encoded once per tick, so one
process can deliver tens of thousands of ticks a second. A client whose socket buffer
backs up past MAX_BUFFER has frames dropped rather than stalling every other client.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
from functools import lru_cache
from typing import TYPE_CHECKING

from aiohttp import WSMsgType, web

from . import wire
from .faults import PriceFault
from .instruments import hash_symbol

if TYPE_CHECKING:
    from .instance import Instance

log = logging.getLogger("brokersim.feed")
AUTH_GRACE_SECONDS = 15.0
PING_INTERVAL = 20.0
MAX_BUFFER = 8 * 1024 * 1024
MODE_LABELS = {1: "LTP", 2: "Quote", 3: "Depth"}
MODE_BY_NAME = {"ltp": 1, "quote": 2, "depth": 3}


@lru_cache(maxsize=65536)
def slot_of(symbol: str, slots: int) -> int:
    """The phase slot in which a symbol's frames are sent (stable per symbol)."""
    return hash_symbol(symbol) % slots


def ws_frame(payload: bytes) -> bytes:
    """An unmasked RFC 6455 text frame (servers never mask)."""
    n = len(payload)
    if n < 126:
        return bytes((0x81, n)) + payload
    if n < 65536:
        return bytes((0x81, 126)) + n.to_bytes(2, "big") + payload
    return bytes((0x81, 127)) + n.to_bytes(8, "big") + payload


def error(code: str, message: str) -> dict:
    # OpenAlgo's error frames carry no "type" key.
    return {"status": "error", "code": code, "message": message}


class Client:
    __slots__ = ("ws", "transport", "authenticated", "subs", "orders", "dropped")

    def __init__(self, ws: web.WebSocketResponse, transport) -> None:
        self.ws = ws
        self.transport = transport
        self.authenticated = False
        self.subs: dict[tuple[str, str], set[int]] = {}
        self.orders = False
        self.dropped = 0

    def write(self, data: bytes) -> None:
        t = self.transport
        if t is None or t.is_closing():
            return
        if t.get_write_buffer_size() > MAX_BUFFER:
            self.dropped += 1
            return
        t.write(data)

    async def send(self, obj: dict) -> None:
        self.write(ws_frame(json.dumps(obj).encode()))


def parse_mode(value) -> int | None:
    if value is None:
        return 2
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value if value in MODE_LABELS else None
    if isinstance(value, str):
        if value.isdigit():
            return parse_mode(int(value))
        return MODE_BY_NAME.get(value.lower())
    return None


class Feed:
    """Clients, subscriptions and tick delivery for one instance."""

    def __init__(self, instance: Instance) -> None:
        self.instance = instance
        self.clients: set[Client] = set()
        self.stalled = False
        self.price_fault: PriceFault | None = None
        self.connections_total = 0

    # ----------------------------------------------------------------- tick fan-out
    def wanted(self) -> set[tuple[str, str]]:
        keys: set[tuple[str, str]] = set()
        for c in self.clients:
            keys.update(c.subs)
        return keys

    def broadcast(self, data_for, slot: int = 0, slots: int = 1) -> int:
        """Send this tick's data to every subscriber; returns the number of frames written.

        `data_for(symbol, exchange, mode, price_fault)` returns the pre-encoded `data` JSON,
        cached per tick across instances.
        """
        if self.stalled or not self.clients:
            return 0
        broker = self.instance.broker
        sent = 0
        for c in self.clients:
            if not c.authenticated or not c.subs:
                continue
            parts = []
            for (symbol, exchange), modes in c.subs.items():
                if slots > 1 and slot_of(symbol, slots) != slot:
                    continue
                data = data_for(symbol, exchange, max(modes), self.price_fault)
                if data is None:
                    continue
                for m in modes:
                    parts.append(
                        ws_frame(
                            b'{"type":"market_data","symbol":"%s","exchange":"%s","mode":%d,"broker":"%s","data":%s}'
                            % (symbol.encode(), exchange.encode(), m, broker.encode(), data)
                        )
                    )
            if parts:
                c.write(b"".join(parts))
                sent += len(parts)
        return sent

    def order_update(self, payload: dict) -> None:
        if not self.clients:
            return
        frame = ws_frame(json.dumps(payload).encode())
        for c in self.clients:
            if c.authenticated and c.orders:
                c.write(frame)

    async def close_all(self) -> None:
        for c in list(self.clients):
            if c.transport is not None:
                c.transport.abort()
        self.clients.clear()

    # ----------------------------------------------------------------- connection
    async def handle(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(heartbeat=PING_INTERVAL, max_msg_size=1 << 20)
        await ws.prepare(request)
        client = Client(ws, request.transport)
        self.clients.add(client)
        self.connections_total += 1
        loop = asyncio.get_running_loop()
        timer = loop.call_later(AUTH_GRACE_SECONDS, lambda: asyncio.ensure_future(self._auth_timeout(client)))
        try:
            async for msg in ws:
                if msg.type != WSMsgType.TEXT:
                    continue
                await self._on_message(client, msg.data)
        finally:
            timer.cancel()
            self.clients.discard(client)
        return ws

    async def _auth_timeout(self, client: Client) -> None:
        if not client.authenticated and not client.ws.closed:
            await client.ws.close(code=4401, message=b"auth timeout")

    async def _on_message(self, c: Client, text: str) -> None:
        try:
            msg = json.loads(text)
        except ValueError:
            await c.send(error("INVALID_JSON", "Invalid JSON message"))
            return
        if not isinstance(msg, dict):
            await c.send(error("INVALID_JSON", "Invalid JSON message"))
            return
        action = msg.get("action") or msg.get("type")
        inst = self.instance
        if action in ("authenticate", "auth"):
            key = msg.get("api_key") or msg.get("apikey")
            if not key:
                await c.send(error("AUTHENTICATION_ERROR", "API key is required"))
            elif key != inst.api_key:
                await c.send(error("AUTHENTICATION_ERROR", "Invalid API key"))
            elif inst.session_expired:
                await c.send(error("BROKER_ERROR", f"Failed to create adapter for broker: {inst.broker}"))
            else:
                c.authenticated = True
                await c.send(
                    {
                        "type": "auth",
                        "status": "success",
                        "message": "Authentication successful",
                        "broker": inst.broker,
                        "user_id": inst.user_id,
                        "supported_features": {"ltp": True, "quote": True, "depth": True},
                    }
                )
            return
        if action == "ping":
            await c.send(
                {
                    "type": "pong",
                    "status": "success",
                    "server_timestamp": inst.sim.market.ts_ms,
                    "client_timestamp": msg.get("timestamp"),
                    "_pingId": msg.get("_pingId"),
                }
            )
            return
        if action == "get_supported_brokers":
            brokers = list(wire.BROKERS)
            await c.send({"type": "supported_brokers", "status": "success", "brokers": brokers, "count": len(brokers)})
            return
        if action not in (
            "subscribe",
            "unsubscribe",
            "unsubscribe_all",
            "subscribe_orders",
            "unsubscribe_orders",
            "get_broker_info",
        ):
            await c.send(error("INVALID_ACTION", f"Invalid action: {action}"))
            return
        if not c.authenticated:
            await c.send(error("NOT_AUTHENTICATED", "You must authenticate first"))
            return
        if action == "get_broker_info":
            await c.send(
                {
                    "type": "broker_info",
                    "status": "success",
                    "broker": inst.broker,
                    "adapter_status": "connected",
                    "user_id": inst.user_id,
                }
            )
        elif action == "subscribe":
            await self._subscribe(c, msg)
        elif action == "unsubscribe":
            await self._unsubscribe(c, msg)
        elif action == "unsubscribe_all":
            c.subs.clear()
            await c.send(
                {
                    "type": "unsubscribe",
                    "status": "success",
                    "message": "Unsubscription processing complete",
                    "successful": [],
                    "failed": [],
                    "broker": inst.broker,
                }
            )
        elif action == "subscribe_orders":
            c.orders = True
            await c.send({"type": "subscribe_orders", "status": "success", "message": "Subscribed to order updates"})
        elif action == "unsubscribe_orders":
            c.orders = False
            await c.send(
                {"type": "unsubscribe_orders", "status": "success", "message": "Unsubscribed from order updates"}
            )

    @staticmethod
    def _items(msg: dict) -> list | None:
        if "symbols" in msg:
            items = msg["symbols"]
            return items if isinstance(items, list) else None
        if "symbol" in msg:
            return [{"symbol": msg.get("symbol"), "exchange": msg.get("exchange"), "mode": msg.get("mode")}]
        return None

    async def _subscribe(self, c: Client, msg: dict) -> None:
        inst = self.instance
        mode = parse_mode(msg.get("mode"))
        if mode is None:
            await c.send(
                error("INVALID_MODE", f"Invalid mode: {msg.get('mode')}. Must be 1 (LTP), 2 (Quote) or 3 (Depth)")
            )
            return
        items = self._items(msg)
        if not items:
            await c.send(error("INVALID_PARAMETERS", "At least one symbol must be specified"))
            return
        depth = msg.get("depth", 5)
        results = []
        all_ok = True
        for item in items:
            if not isinstance(item, dict) or not item.get("symbol") or not item.get("exchange"):
                continue  # OpenAlgo skips such items silently
            symbol, exchange = str(item["symbol"]), str(item["exchange"])
            if inst.sim.market.lookup(symbol, exchange) is None:
                all_ok = False
                results.append(
                    {
                        "symbol": symbol,
                        "exchange": exchange,
                        "status": "error",
                        "message": f"Symbol {symbol} not found for exchange {exchange}",
                        "broker": inst.broker,
                    }
                )
                continue
            c.subs.setdefault((symbol, exchange), set()).add(mode)
            results.append(
                {
                    "symbol": symbol,
                    "exchange": exchange,
                    "status": "success",
                    "mode": MODE_LABELS[mode],
                    "depth": depth,
                    "broker": inst.broker,
                }
            )
        reply = {
            "type": "subscribe",
            "status": "success" if all_ok and results else "partial",
            "subscriptions": results,
            "message": "Subscription processing complete",
            "broker": inst.broker,
        }
        if "request_id" in msg:
            reply["request_id"] = msg["request_id"]
        await c.send(reply)

    async def _unsubscribe(self, c: Client, msg: dict) -> None:
        inst = self.instance
        if "symbols" in msg:
            raw = msg["symbols"] if isinstance(msg["symbols"], list) else []
            # In the array form the mode is read per item (default 2); a top-level mode is ignored.
            items = [
                (i.get("symbol"), i.get("exchange"), parse_mode(i.get("mode"))) for i in raw if isinstance(i, dict)
            ]
        elif "symbol" in msg:
            items = [(msg.get("symbol"), msg.get("exchange"), parse_mode(msg.get("mode")))]
        else:
            await c.send(error("INVALID_PARAMETERS", "Either symbols or unsubscribe_all is required"))
            return
        ok, failed = [], []
        for symbol, exchange, mode in items:
            modes = c.subs.get((symbol, exchange))
            if modes is not None and mode in modes:
                modes.discard(mode)
                if not modes:
                    del c.subs[(symbol, exchange)]
                ok.append({"symbol": symbol, "exchange": exchange, "status": "success", "broker": inst.broker})
            else:
                failed.append(
                    {
                        "symbol": symbol,
                        "exchange": exchange,
                        "status": "error",
                        "message": "Not subscribed",
                        "broker": inst.broker,
                    }
                )
        status = "success" if ok and not failed else ("partial" if ok else "error")
        reply = {
            "type": "unsubscribe",
            "status": status,
            "message": "Unsubscription processing complete",
            "successful": ok,
            "failed": failed,
            "broker": inst.broker,
        }
        if "request_id" in msg:
            reply["request_id"] = msg["request_id"]
        await c.send(reply)


def ltp_data(
    symbol: str, exchange: str, ltp: float, ts_ms: int, fault: PriceFault | None, stamp_ms: int | None
) -> bytes:
    """An LTP-mode `data` object without building a full quote (the hot path for LTP subscribers)."""
    if fault == PriceFault.ZERO:
        ltp = 0.0
    elif fault == PriceFault.NAN:
        ltp = math.nan
    stamp = ts_ms if stamp_ms is None else stamp_ms
    return b'{"symbol":"%s","exchange":"%s","mode":1,"ltp":%s,"ltt":%d,"timestamp":%d}' % (
        symbol.encode(),
        exchange.encode(),
        json.dumps(ltp).encode(),
        ts_ms,
        stamp,
    )


def tick_data(q, mode: int, fault: PriceFault | None, stamp_ms: int | None = None) -> bytes:
    """The `data` object of a market_data frame (Angel-style keys), JSON-encoded.

    `ltt` is the market's (simulated) trade time; `timestamp` is when the server sent it,
    wall clock, as OpenAlgo stamps its frames (defaults to the market time).
    """
    ltp = q.ltp
    if fault == PriceFault.ZERO:
        ltp = 0.0
    elif fault == PriceFault.NAN:
        ltp = math.nan
    d = {
        "symbol": q.symbol,
        "exchange": q.exchange,
        "mode": mode,
        "ltp": ltp,
        "ltt": q.ts_ms,
        "timestamp": q.ts_ms if stamp_ms is None else stamp_ms,
    }
    if mode >= 2:
        d.update(
            {
                "open": q.open,
                "high": q.high,
                "low": q.low,
                "close": q.prev_close,
                "volume": q.volume,
                "average_price": q.average_price,
                "total_buy_quantity": q.total_buy_qty,
                "total_sell_quantity": q.total_sell_qty,
                "last_trade_quantity": q.ltq,
                "oi": q.oi,
            }
        )
    if mode == 3:
        d["depth"] = {
            "buy": [{"price": p, "quantity": n, "orders": k} for p, n, k in q.bids],
            "sell": [{"price": p, "quantity": n, "orders": k} for p, n, k in q.asks],
        }
    # Python's json emits NaN as a bare token, exactly what a Python feed server would send.
    return json.dumps(d, separators=(",", ":")).encode()
