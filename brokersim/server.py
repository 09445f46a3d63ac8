"""HTTP side of brokersim: OpenAlgo REST v1 per instance, the /_sim control API, and the
process-wide Simulator that owns the market clock and every instance."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import hashlib
import json
import logging
import math
import socket
import struct
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from . import calendar as cal
from . import instruments as ins
from . import pricing, wire
from . import schemas as sc
from .engine import Account, Holding, Order, OrderError
from .feed import Feed, ltp_data, tick_data
from .market import INTERVAL_SECONDS, Market
from .ratelimit import MovingWindow

log = logging.getLogger("brokersim")

BROKERS = (
    "zerodha",
    "dhan",
    "angel",
    "fyers",
    "upstox",
    "kotak",
    "flattrade",
    "shoonya",
    "aliceblue",
    "fivepaisa",
    "groww",
    "firstock",
    "zebu",
    "iifl",
    "motilal",
    "definedge",
)
CAPITALS = (500_000.0, 1_000_000.0, 2_500_000.0, 5_000_000.0, 10_000_000.0)
INVALID_KEY = "Invalid openalgo apikey"

# Endpoints whose validation errors come back as the repr string of the error dict.
ORDER_WRITERS = {
    "placeorder",
    "placesmartorder",
    "modifyorder",
    "cancelorder",
    "cancelallorder",
    "closeposition",
    "basketorder",
    "splitorder",
    "orderstatus",
    "openposition",
    "optionsorder",
    "margin",
}
# Endpoints that need only a valid key, not a live broker session.
KEY_ONLY = {"search", "expiry"}
ORDER_BUCKET = {"placeorder", "modifyorder", "cancelorder", "optionsorder"}
SMART_BUCKET = {"placesmartorder"}
# Routed through the sandbox in analyzer mode: their responses carry "mode": "analyze".
ANALYZER_ROUTED = (ORDER_WRITERS - {"margin"}) | {"funds", "orderbook", "tradebook", "positionbook", "holdings"}
FAULT_KINDS = {
    "latency",
    "status",
    "hang",
    "drop_after_execute",
    "reset",
    "malformed",
    "reject",
    "partial_fill",
    "late_average_price",
}
OFFSET_ERROR = "Offset must be ATM, ITM1-ITM50, or OTM1-OTM50"
SEND_SLOTS = 10  # phases per tick interval in which instruments' frames are sent


class Reply(Exception):
    """Short-circuit a handler with a status and body."""

    def __init__(self, status: int, body: Any) -> None:
        self.status = status
        self.body = body


def err(status: int, message: Any) -> Reply:
    return Reply(status, {"status": "error", "message": message})


@dataclass
class Fault:
    endpoint: str
    kind: str
    value: Any = None
    count: int | None = None


@dataclass
class Instance:
    sim: Simulator
    index: int
    name: str
    broker: str
    api_key: str
    profile: str
    account: Account
    user_id: str = "admin"
    rest_port: int = 0
    ws_port: int = 0
    session_expired: bool = False
    faults: list[Fault] = field(default_factory=list)
    requests: Counter = field(default_factory=Counter)
    ws_down: bool = False
    ws_site: web.TCPSite | None = None
    ws_runner: web.AppRunner | None = None
    rest_runner: web.AppRunner | None = None
    stopped: bool = False
    feed: Feed = None  # type: ignore[assignment]

    def __post_init__(self) -> None:
        self.feed = Feed(self)
        self.limits = {
            "order": MovingWindow(self.sim.order_rate_limit),
            "smart": MovingWindow(self.sim.order_rate_limit),
            "api": MovingWindow(self.sim.api_rate_limit),
        }
        self.account.listeners.append(self._order_event)

    @property
    def host(self) -> str:
        return f"http://127.0.0.1:{self.rest_port}"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.ws_port}"

    def info(self) -> dict:
        return {
            "name": self.name,
            "broker": self.broker,
            "host": self.host,
            "ws_url": self.ws_url,
            "api_key": self.api_key,
        }

    def bucket(self, endpoint: str) -> MovingWindow:
        if endpoint in ORDER_BUCKET:
            return self.limits["order"]
        if endpoint in SMART_BUCKET:
            return self.limits["smart"]
        return self.limits["api"]

    def take_faults(self, endpoint: str) -> list[Fault]:
        hit = []
        for f in list(self.faults):
            if f.endpoint in (endpoint, "*"):
                hit.append(f)
                if f.count is not None:
                    f.count -= 1
                    if f.count <= 0:
                        self.faults.remove(f)
        return hit

    def _order_event(self, o: Order) -> None:
        self.feed.order_update(
            {
                "type": "order_update",
                "user_id": self.user_id,
                "mode": "analyze" if self.profile == wire.SANDBOX else "live",
                "broker": "sandbox" if self.profile == wire.SANDBOX else self.broker,
                "orderid": o.orderid,
                "symbol": o.symbol,
                "exchange": o.exchange,
                "action": o.action,
                "quantity": o.quantity,
                "price": o.price,
                "trigger_price": o.trigger_price,
                "pricetype": o.pricetype,
                "product": o.product,
                "order_status": o.status,
                "filled_quantity": o.filled_quantity,
                "pending_quantity": o.pending_quantity,
                "average_price": round(o.average_price, 2),
                "rejection_reason": o.rejection_reason,
            }
        )

    def reset(self) -> None:
        fresh = self.sim.new_account(self.index)
        self.account.orders, self.account.trades, self.account.positions = {}, [], {}
        self.account.holdings = fresh.holdings
        self.account.capital = fresh.capital
        self.faults.clear()
        self.session_expired = False
        self.requests.clear()
        self.feed.stalled = False
        self.feed.price_fault = None
        for lim in self.limits.values():
            lim.reset()


class Simulator:
    def __init__(
        self,
        *,
        accounts: int,
        seed: int,
        start: dt.datetime | None = None,
        tick_rate: float = 5.0,
        profile: str = "mixed",
        api_rate_limit: int = 50,
        order_rate_limit: int = 10,
        replay: list[dict] | None = None,
        record_path: str | None = None,
        fast: bool = False,
        max_ticks: int | None = None,
        history_days: int = 20,
    ) -> None:
        self.seed = seed
        self.api_rate_limit = api_rate_limit
        self.order_rate_limit = order_rate_limit
        self.fast = fast
        self.max_ticks = max_ticks
        start = start or dt.datetime.now(dt.UTC)
        self.market = Market(seed=seed, start=start, tick_rate=tick_rate, replay=replay, history_days=history_days)
        self.started = self.market.now
        self.record_file = open(record_path, "w") if record_path else None  # noqa: SIM115
        if self.record_file:
            self.record_file.write(self.market.record_header() + "\n" + self.market.record_line() + "\n")
        self.instances: list[Instance] = []
        for i in range(1, accounts + 1):
            if profile == "mixed":
                prof = wire.SANDBOX if i % 2 else wire.LIVE
            else:
                prof = profile
            key = hashlib.sha256(f"brokersim:{seed}:{i}".encode()).hexdigest()
            self.instances.append(
                Instance(self, i, f"paper-{i:02d}", BROKERS[(i - 1) % len(BROKERS)], key, prof, self.new_account(i))
            )
        self.ticks_delivered = 0

    def new_account(self, i: int) -> Account:
        capital = CAPITALS[(i - 1) % len(CAPITALS)]
        acc = Account(index=i, market=self.market, capital=capital)
        # A couple of long-term holdings so /holdings has something to show.
        for n, name in enumerate(("RELIANCE", "INFY", "TCS")[: 1 + i % 3]):
            u = ins.UNDERLYINGS[name]
            avg = pricing.round_tick(u.base_price * (0.8 + 0.05 * ((i + n) % 7)))
            acc.holdings.append(Holding(name, "NSE", 5 * (1 + (i + n) % 4), avg))
        return acc

    # ------------------------------------------------------------------ tick loop
    def _data_cache(self):
        cache: dict[tuple, bytes] = {}
        market = self.market
        stamp = None if self.fast or market.replay else int(time.time() * 1000)

        def data_for(symbol: str, exchange: str, mode: int, fault: str | None) -> bytes:
            key = (symbol, exchange, mode, fault)
            d = cache.get(key)
            if d is None:
                inst = market.lookup(symbol, exchange)
                if mode == 1:
                    d = ltp_data(symbol, exchange, market.ltp(inst), market.ts_ms, fault, stamp)
                else:
                    d = tick_data(market.quote(inst), mode, fault, stamp)
                cache[key] = d
            return d

        return data_for

    def tick(self, slot: int = 0, slots: int = 1) -> bool:
        """Advance the market one step and send slot 0's share of it (all of it when slots == 1)."""
        if not self.market.step():
            return False
        if self.record_file:
            self.record_file.write(self.market.record_line() + "\n")
        for inst in self.instances:
            inst.account.on_tick()
        self.send(slot, slots)
        return True

    def send(self, slot: int, slots: int) -> None:
        data_for = self._data_cache()
        for inst in self.instances:
            self.ticks_delivered += inst.feed.broadcast(data_for, slot, slots)

    async def run_ticks(self) -> None:
        """Market steps every 1/tick_rate s. Each instrument's frames go out in its own phase slot
        of that interval (like a real feed, where symbols tick independently), not all at once:
        a synchronised burst of every symbol would measure queueing, not the pipeline."""
        loop = asyncio.get_running_loop()
        slots = 1 if self.fast else SEND_SLOTS
        next_at = loop.time()
        n = 0
        while self.max_ticks is None or n < self.max_ticks:
            try:
                if not self.tick(0, slots):
                    break
            except Exception:  # a bug in one tick must not kill the market
                log.exception("tick failed")
            n += 1
            if self.fast:
                await asyncio.sleep(0)
                continue
            for k in range(1, slots):
                await asyncio.sleep(max(next_at + k * self.market.dt / slots - loop.time(), 0))
                self.send(k, slots)
            next_at += self.market.dt
            delay = next_at - loop.time()
            if delay < -1.0:  # far behind (machine paused): skip ahead instead of bursting
                next_at = loop.time()
                delay = 0
            await asyncio.sleep(max(delay, 0))
        if self.record_file:
            self.record_file.flush()

    # ------------------------------------------------------------------ serving
    async def start(self, base_port: int) -> None:
        for inst in self.instances:
            rest_port = 0 if base_port == 0 else base_port + inst.index
            ws_port = 0 if base_port == 0 else base_port + 3000 + inst.index
            await self.start_rest(inst, rest_port)
            await self.start_ws(inst, ws_port)

    async def start_rest(self, inst: Instance, port: int) -> None:
        runner = web.AppRunner(make_rest_app(inst), access_log=None, handle_signals=False)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", port, reuse_address=True)
        await site.start()
        inst.rest_port = site._server.sockets[0].getsockname()[1]
        inst.rest_runner = runner
        inst.stopped = False

    async def stop_instance(self, inst: Instance) -> None:
        """Stop serving one instance entirely: REST and WebSocket connections are refused."""
        await self.stop_ws(inst)
        if inst.rest_runner is not None:
            await inst.rest_runner.cleanup()
            inst.rest_runner = None
        inst.stopped = True

    async def start_instance(self, inst: Instance) -> None:
        if inst.stopped:
            await self.start_rest(inst, inst.rest_port)
        if inst.ws_down:
            await self.start_ws(inst, inst.ws_port)

    async def start_ws(self, inst: Instance, port: int) -> None:
        app = web.Application()
        app.router.add_get("/", inst.feed.handle)
        app.router.add_get("/ws", inst.feed.handle)
        runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", port, reuse_address=True)
        await site.start()
        inst.ws_port = site._server.sockets[0].getsockname()[1]
        inst.ws_site, inst.ws_runner = site, runner
        inst.ws_down = False

    async def stop_ws(self, inst: Instance) -> None:
        if inst.ws_runner is not None:
            await inst.feed.close_all()
            await inst.ws_runner.cleanup()
            inst.ws_runner = inst.ws_site = None
        inst.ws_down = True

    async def close(self) -> None:
        for inst in self.instances:
            await inst.feed.close_all()
            if inst.ws_runner is not None:
                await inst.ws_runner.cleanup()
        for inst in self.instances:
            if inst.rest_runner is not None:
                await inst.rest_runner.cleanup()
        if self.record_file:
            self.record_file.close()


# ====================================================================== REST handlers
def _resp(status: int, body: Any) -> web.Response:
    return web.Response(status=status, text=json.dumps(body), content_type="application/json")


def _abort(request: web.Request, rst: bool) -> None:
    transport = request.transport
    if transport is None:
        return
    if rst:
        sock = transport.get_extra_info("socket")
        if sock is not None:
            # SO_LINGER 0 turns the close into a TCP RST: the client sees "connection reset".
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    transport.abort()


class DropConnection(Exception):
    pass


def make_rest_app(inst: Instance) -> web.Application:
    app = web.Application(client_max_size=4 * 1024 * 1024)

    def route(endpoint: str, schema_cls: type[sc.Base] | None, handler):
        schema = schema_cls() if schema_cls is not None else None  # marshmallow schemas are reusable

        async def view(request: web.Request) -> web.StreamResponse:
            inst.requests[endpoint] += 1
            client_ip = request.remote or "?"
            bucket = inst.bucket(endpoint)
            if not bucket.hit(endpoint, client_ip):
                return _resp(429, {"message": bucket.text})
            faults = inst.take_faults(endpoint)
            exec_fault: dict | None = None
            post_fault: str | None = None
            for f in faults:
                if f.kind == "latency":
                    await asyncio.sleep(float(f.value or 0) / 1000.0)
                elif f.kind == "status":
                    return _status_fault(int(f.value or 500), endpoint)
                elif f.kind == "hang":
                    await asyncio.sleep(float(f.value or 120))
                    _abort(request, rst=False)
                    return web.Response(status=504)
                elif f.kind == "reset":
                    _abort(request, rst=True)
                    return web.Response(status=500)
                elif f.kind in ("drop_after_execute", "malformed"):
                    post_fault = f.kind
                else:
                    exec_fault = {"kind": f.kind, "value": f.value}
            try:
                body = await request.json()
            except (ValueError, UnicodeDecodeError):
                return _resp(
                    500, {"status": "error", "message": "An unexpected error occurred while processing request"}
                )
            try:
                data = schema.load(body) if schema is not None else body
            except sc.ValidationError as e:
                message = str(e.messages) if endpoint in ORDER_WRITERS else e.messages
                return _resp(400, {"status": "error", "message": message})
            except Exception:  # body not a dict etc.
                message = {"_schema": ["Invalid input type."]}
                return _resp(
                    400, {"status": "error", "message": str(message) if endpoint in ORDER_WRITERS else message}
                )
            if data.get("apikey") != inst.api_key:
                return _resp(403, {"status": "error", "message": INVALID_KEY})
            if inst.session_expired and endpoint not in KEY_ONLY:
                return _resp(403, {"status": "error", "message": INVALID_KEY})
            try:
                status, out = 200, handler(inst, data, exec_fault)
            except Reply as r:
                status, out = r.status, r.body
            if status == 200 and endpoint in ANALYZER_ROUTED and inst.profile == wire.SANDBOX and isinstance(out, dict):
                out.setdefault("mode", "analyze")
            if post_fault == "drop_after_execute":
                _abort(request, rst=True)
                return web.Response(status=500)
            if post_fault == "malformed":
                text = json.dumps(out)
                return web.Response(
                    status=200, text=text[: max(len(text) // 2, 1)] + "<!--", content_type="application/json"
                )
            return _resp(status, out)

        app.router.add_post(f"/api/v1/{endpoint}", view)
        app.router.add_post(f"/api/v1/{endpoint}/", view)

    for name, (schema, handler) in HANDLERS.items():
        route(name, schema, handler)
    add_control_routes(app, inst)
    return app


def _status_fault(code: int, endpoint: str) -> web.Response:
    if code == 429:
        return _resp(429, {"message": "10 per 1 second"})
    if code == 403:
        return _resp(403, {"status": "error", "message": INVALID_KEY})
    if code in (502, 503, 504):
        reason = {502: "Bad Gateway", 503: "Service Temporarily Unavailable", 504: "Gateway Time-out"}[code]
        html = f"<html><head><title>{code} {reason}</title></head><body><h1>{code} {reason}</h1></body></html>"
        return web.Response(status=code, text=html, content_type="text/html")
    msg = "Failed to place order due to internal error" if endpoint in ORDER_WRITERS else "An unexpected error occurred"
    return _resp(code, {"status": "error", "message": msg})


def _lookup(inst: Instance, symbol: str, exchange: str, not_found_status: int = 400) -> ins.Instrument:
    found = inst.sim.market.lookup(symbol, exchange)
    if found is None:
        raise err(
            not_found_status,
            f"Symbol '{symbol}' not found for exchange '{exchange}'. Please verify the symbol "
            "name and ensure master contracts are downloaded.",
        )
    return found


def _place(inst: Instance, d: dict, fault: dict | None) -> Order:
    try:
        return inst.account.place(
            strategy=d.get("strategy", ""),
            symbol=d["symbol"],
            exchange=d["exchange"],
            action=d["action"],
            quantity=d["quantity"],
            pricetype=d.get("pricetype", "MARKET"),
            product=d.get("product", "MIS"),
            price=d.get("price", 0.0),
            trigger_price=d.get("trigger_price", 0.0),
            disclosed_quantity=d.get("disclosed_quantity", 0),
            fault=fault,
        )
    except OrderError as e:
        body = {"status": "error", "message": e.message}
        if e.orderid:
            body["orderid"] = e.orderid
        raise Reply(400, body) from None


def h_ping(inst, d, f):
    return {"status": "success", "data": {"message": "pong", "broker": inst.broker}}


def h_funds(inst, d, f):
    return {"status": "success", "data": wire.funds(inst.account, inst.profile, inst.sim.started)}


def h_orderbook(inst, d, f):
    return {"status": "success", "data": wire.orderbook(inst.account, inst.profile)}


def h_tradebook(inst, d, f):
    return {"status": "success", "data": wire.tradebook(inst.account, inst.profile)}


def h_positionbook(inst, d, f):
    return {"status": "success", **wire.positionbook(inst.account, inst.profile)}


def h_holdings(inst, d, f):
    return {"status": "success", "data": wire.holdings(inst.account, inst.profile)}


def h_openposition(inst, d, f):
    q = inst.account.net_quantity(d["symbol"], d["exchange"], d["product"])
    return {"status": "success", "quantity": str(q) if inst.profile == wire.LIVE else q}


def h_orderstatus(inst, d, f):
    o = inst.account.get(d["orderid"])
    if o is None:
        raise err(404, f"Order {d['orderid']} not found")
    row = wire.order_row(o, inst.profile, for_status=True)
    if o.hide_avg_polls > 0 and o.status == "complete":
        o.hide_avg_polls -= 1
    return {"status": "success", "data": row}


def h_placeorder(inst, d, f):
    return {"status": "success", "orderid": _place(inst, d, f).orderid}


def h_placesmartorder(inst, d, f):
    current = inst.account.net_quantity(d["symbol"], d["exchange"], d["product"])
    target = int(d["position_size"])
    if target == current and target != 0:
        return {"status": "success", "message": "Positions Already Matched. No Action needed."}
    if target == 0 and current == 0:
        if d["quantity"] == 0:
            return {"status": "success", "message": "No OpenPosition Found. Not placing Exit order."}
        return h_placeorder(inst, d, f)
    diff = target - current
    order = dict(d, action="BUY" if diff > 0 else "SELL", quantity=abs(diff))
    return {"status": "success", "orderid": _place(inst, order, f).orderid}


def h_splitorder(inst, d, f):
    total, size = int(d["quantity"]), int(d["splitsize"])
    n = math.ceil(total / size)
    if n > 100:
        raise err(400, "Total number of orders would exceed maximum limit of 100")
    results = []
    for k in range(n):
        q = min(size, total - k * size)
        try:
            o = _place(inst, dict(d, quantity=q), f)
            results.append({"order_num": k + 1, "quantity": q, "status": "success", "orderid": o.orderid})
        except Reply as r:
            results.append({"order_num": k + 1, "quantity": q, "status": "error", "message": r.body["message"]})
    return {"status": "success", "total_quantity": total, "split_size": size, "results": results}


def h_basketorder(inst, d, f):
    orders = sorted(d["orders"], key=lambda o: o["action"].upper() != "BUY")  # BUYs first
    results = []
    for o in orders:
        row = {"symbol": o["symbol"], "exchange": o["exchange"], "product": o["product"]}
        try:
            placed = _place(inst, dict(o, strategy=d["strategy"]), f)
            row.update(status="success", orderid=placed.orderid)
        except Reply as r:
            row.update(status="error", message=r.body["message"])
        results.append(row)
    return {"status": "success", "results": results}


def _resolve_option(inst: Instance, d: dict) -> tuple[ins.Instrument, float, ins.Underlying]:
    market = inst.sim.market
    underlying = d["underlying"].upper()
    expiry_text = d.get("expiry_date")
    base = underlying
    future = None
    m = ins._DERIV.match(underlying)
    if m and m.group(3):
        base, expiry_text = m.group(1), expiry_text or m.group(2)
        future = underlying
    u = ins.UNDERLYINGS.get(base)
    if u is None or u.fo_exchange is None:
        raise err(400, f"Underlying {underlying} not supported for options")
    if d["exchange"] not in (u.exchange, u.fo_exchange, u.exchange.split("_")[0]):
        raise err(400, f"Exchange {d['exchange']} does not match underlying {base}")
    if not expiry_text:
        raise err(400, "Expiry date required. Provide expiry_date (DDMMMYY) or embed it in the underlying symbol")
    expiry = cal.parse_ddmmmyy(expiry_text)
    offset = str(d["offset"]).upper()
    if offset == "ATM":
        steps = 0
    elif offset[:3] in ("ITM", "OTM") and offset[3:].isdigit() and 1 <= int(offset[3:]) <= 50:
        steps = int(offset[3:]) * (-1 if offset.startswith("ITM") else 1)
    else:
        raise err(400, OFFSET_ERROR)
    if expiry is None or expiry not in ins.option_expiries(u, market.listing_day):
        raise err(400, f"No strikes found for {base} expiring {expiry_text.upper()}")
    if future:
        fut = market.lookup(future, u.fo_exchange)
        if fut is None:
            raise err(400, f"Failed to fetch LTP for {future}")
        ltp = market.ltp(fut)
    else:
        ltp = market.ltp(ins.Instrument(u.name, u.exchange, "index" if u.is_index else "equity", u))
    strikes = ins.listed_strikes(u)
    if d.get("strike_int"):
        step = int(d["strike_int"])
        strikes = tuple(s for s in strikes if s % step == 0)
    atm_idx = min(range(len(strikes)), key=lambda i: (abs(strikes[i] - ltp), strikes[i]))
    opt = d["option_type"].upper()
    idx = atm_idx + (steps if opt == "CE" else -steps)
    if not 0 <= idx < len(strikes):
        raise err(400, f"Strike for {offset} is outside the listed strikes of {base}")
    symbol = ins.option_symbol(u.name, expiry, strikes[idx], opt)
    return market.lookup(symbol, u.fo_exchange), ltp, u


def h_optionsymbol(inst, d, f):
    option, ltp, u = _resolve_option(inst, d)
    return {
        "status": "success",
        "symbol": option.symbol,
        "exchange": option.exchange,
        "lotsize": option.lot_size,
        "tick_size": option.tick_size,
        "freeze_qty": option.freeze_qty,
        "underlying_ltp": ltp,
    }


def h_optionsorder(inst, d, f):
    option, ltp, u = _resolve_option(inst, d)
    order = {
        k: d[k]
        for k in (
            "strategy",
            "action",
            "quantity",
            "pricetype",
            "product",
            "price",
            "trigger_price",
            "disclosed_quantity",
        )
    }
    order.update(symbol=option.symbol, exchange=option.exchange)
    base = {
        "status": "success",
        "symbol": option.symbol,
        "exchange": option.exchange,
        "underlying": u.name,
        "underlying_ltp": ltp,
        "offset": d["offset"].upper(),
        "option_type": d["option_type"].upper(),
    }
    if d.get("splitsize"):
        split = h_splitorder(inst, dict(order, splitsize=d["splitsize"]), f)
        base.update(total_quantity=split["total_quantity"], split_size=split["split_size"], results=split["results"])
        return base
    base["orderid"] = _place(inst, order, f).orderid
    return base


def h_modifyorder(inst, d, f):
    try:
        o = inst.account.modify(
            d["orderid"],
            pricetype=d["pricetype"],
            price=d["price"],
            quantity=d["quantity"],
            trigger_price=d["trigger_price"],
            disclosed_quantity=d["disclosed_quantity"],
        )
    except LookupError:
        raise err(404, f"Order {d['orderid']} not found") from None
    except OrderError as e:
        raise err(400, e.message) from None
    out = {"status": "success", "orderid": o.orderid}
    if inst.profile == wire.SANDBOX:
        out["message"] = "Order modified successfully"
    return out


def h_cancelorder(inst, d, f):
    try:
        o = inst.account.cancel(d["orderid"])
    except LookupError:
        raise err(404, f"Order {d['orderid']} not found") from None
    except OrderError as e:
        raise err(400, e.message) from None
    out = {"status": "success", "orderid": o.orderid}
    if inst.profile == wire.SANDBOX:
        out["message"] = "Order cancelled successfully"
    return out


def h_cancelallorder(inst, d, f):
    done = [inst.account.cancel(o.orderid).orderid for o in inst.account.open_orders()]
    return {
        "status": "success",
        "message": f"Canceled {len(done)} orders. Failed to cancel 0 orders.",
        "canceled_orders": done,
        "failed_cancellations": [],
    }


def h_closeposition(inst, d, f):
    closed = failed = 0
    for pos in list(inst.account.positions.values()):
        if pos.quantity == 0:
            continue
        try:
            _place(
                inst,
                {
                    "strategy": d["strategy"],
                    "symbol": pos.symbol,
                    "exchange": pos.exchange,
                    "action": "SELL" if pos.quantity > 0 else "BUY",
                    "quantity": abs(pos.quantity),
                    "pricetype": "MARKET",
                    "product": pos.product,
                },
                None,
            )
            closed += 1
        except Reply:
            failed += 1
    if inst.profile == wire.LIVE:
        return {"status": "success", "message": "All Open Positions Squared Off"}
    if not closed and not failed:
        return {"status": "success", "message": "No open positions to close"}
    return {
        "status": "success",
        "message": f"Closed {closed} positions",
        "closed_positions": closed,
        "failed_closures": failed,
    }


def _quote_dict(q) -> dict:
    return {
        "open": q.open,
        "high": q.high,
        "low": q.low,
        "ltp": q.ltp,
        "ask": q.ask,
        "bid": q.bid,
        "prev_close": q.prev_close,
        "volume": q.volume,
        "oi": q.oi,
    }


def h_quotes(inst, d, f):
    return {"status": "success", "data": _quote_dict(inst.sim.market.quote(_lookup(inst, d["symbol"], d["exchange"])))}


def h_multiquotes(inst, d, f):
    results, invalid = [], []
    for item in d["symbols"]:
        found = inst.sim.market.lookup(item["symbol"], item["exchange"])
        if found is None:
            invalid.append(item["symbol"])
            results.append(
                {
                    "symbol": item["symbol"],
                    "exchange": item["exchange"],
                    "error": f"Symbol '{item['symbol']}' not found for exchange '{item['exchange']}'",
                }
            )
        else:
            results.append(
                {
                    "symbol": item["symbol"],
                    "exchange": item["exchange"],
                    "data": _quote_dict(inst.sim.market.quote(found)),
                }
            )
    if len(invalid) == len(results):
        raise Reply(400, {"status": "error", "message": "No valid symbols found", "invalid_symbols": invalid})
    return {"status": "success", "results": results}


def h_depth(inst, d, f):
    q = inst.sim.market.quote(_lookup(inst, d["symbol"], d["exchange"]))
    return {
        "status": "success",
        "data": {
            "open": q.open,
            "high": q.high,
            "low": q.low,
            "ltp": q.ltp,
            "ltq": q.ltq,
            "prev_close": q.prev_close,
            "volume": q.volume,
            "oi": q.oi,
            "totalbuyqty": q.total_buy_qty,
            "totalsellqty": q.total_sell_qty,
            "asks": [{"price": p, "quantity": n} for p, n, _ in q.asks] or [{"price": 0, "quantity": 0}] * 5,
            "bids": [{"price": p, "quantity": n} for p, n, _ in q.bids] or [{"price": 0, "quantity": 0}] * 5,
        },
    }


def h_history(inst, d, f):
    found = _lookup(inst, d["symbol"], d["exchange"])
    if d["interval"] not in INTERVAL_SECONDS:
        raise err(400, f"Interval '{d['interval']}' is not supported by this broker. Use /intervals to list them")
    if d["end_date"] < d["start_date"]:
        raise err(400, "end_date must not be before start_date")
    return {"status": "success", "data": inst.sim.market.history(found, d["interval"], d["start_date"], d["end_date"])}


def h_intervals(inst, d, f):
    return {
        "status": "success",
        "data": {
            "seconds": [],
            "minutes": ["1m", "3m", "5m", "10m", "15m", "30m"],
            "hours": ["1h"],
            "days": ["D"],
            "weeks": [],
            "months": [],
        },
    }


def h_expiry(inst, d, f):
    u = ins.UNDERLYINGS.get(d["symbol"].upper())
    if u is None or u.fo_exchange != d["exchange"]:
        raise err(404, f"No expiry dates found for {d['symbol']} in {d['exchange']}")
    today = inst.sim.market.listing_day
    dates = ins.option_expiries(u, today) if d["instrumenttype"] == "options" else ins.future_expiries(u, today)
    return {
        "status": "success",
        "message": f"Found {len(dates)} expiry dates for {u.name} {d['instrumenttype']} in {d['exchange']}",
        "data": [cal.fmt_dd_mmm_yy(x) for x in dates],
    }


def h_symbol(inst, d, f):
    found = inst.sim.market.lookup(d["symbol"], d["exchange"])
    if found is None:
        raise err(404, f"Symbol {d['symbol']} not found in exchange {d['exchange']}")
    return {"status": "success", "data": ins.symbol_info(found)}


def h_search(inst, d, f):
    words = d["query"].upper().split()
    rows = []
    for item in ins.all_instruments(inst.sim.market.listing_day):
        if d.get("exchange") and item.exchange != d["exchange"]:
            continue
        if all(w in item.symbol for w in words):
            rows.append(ins.symbol_info(item))
            if len(rows) >= 500:
                break
    if not rows:
        return {"status": "success", "message": "No matching symbols found", "data": []}
    return {"status": "success", "message": f"Found {len(rows)} matching symbols", "data": rows}


def h_optionchain(inst, d, f):
    market = inst.sim.market
    u = ins.UNDERLYINGS.get(d["underlying"].upper())
    if u is None or u.fo_exchange is None:
        raise err(400, f"Underlying {d['underlying']} not supported for options")
    expiry = cal.parse_ddmmmyy(d["expiry_date"])
    if expiry is None or expiry not in ins.option_expiries(u, market.listing_day):
        raise err(400, f"No strikes found for {u.name} expiring {d['expiry_date'].upper()}")
    spot_q = market.quote(ins.Instrument(u.name, u.exchange, "index", u))
    strikes = ins.listed_strikes(u)
    atm_idx = min(range(len(strikes)), key=lambda i: (abs(strikes[i] - spot_q.ltp), strikes[i]))
    n = d.get("strike_count")
    lo, hi = (0, len(strikes)) if n is None else (max(atm_idx - n, 0), min(atm_idx + n + 1, len(strikes)))
    t = market.years_to_expiry(expiry)
    fwd = pricing.forward(spot_q.ltp, t)
    chain = []
    for i in range(lo, hi):
        k = strikes[i]
        row: dict = {"strike": k}
        for ot in ("CE", "PE"):
            opt = market.lookup(ins.option_symbol(u.name, expiry, k, ot), u.fo_exchange)
            q = market.quote(opt)
            moneyness = i - atm_idx if ot == "CE" else atm_idx - i
            label = "ATM" if moneyness == 0 else (f"OTM{moneyness}" if moneyness > 0 else f"ITM{-moneyness}")
            leg = {
                "symbol": opt.symbol,
                "label": label,
                "ltp": q.ltp,
                "bid": q.bid,
                "ask": q.ask,
                "bid_qty": q.bid_qty,
                "ask_qty": q.ask_qty,
                "open": q.open,
                "high": q.high,
                "low": q.low,
                "prev_close": q.prev_close,
                "volume": q.volume,
                "oi": q.oi,
                "lotsize": opt.lot_size,
                "tick_size": opt.tick_size,
            }
            if d.get("with_greeks"):
                vol = pricing.smile_vol(u.annual_vol, k, fwd, t)
                leg["implied_volatility"] = round(vol * 100, 2)
                leg.update(pricing.greeks(fwd, k, t, vol, ot))
            row[ot.lower()] = leg
        chain.append(row)
    expiry_ts = int(dt.datetime.combine(expiry, cal.MARKET_CLOSE, cal.IST).timestamp())
    return {
        "status": "success",
        "underlying": u.name,
        "underlying_ltp": spot_q.ltp,
        "underlying_prev_close": spot_q.prev_close,
        "expiry_date": cal.fmt_ddmmmyy(expiry),
        "expiry_ts": expiry_ts,
        "server_ts": market.ts_ms // 1000,
        "atm_strike": strikes[atm_idx],
        "quotes_included": True,
        "greeks_included": bool(d.get("with_greeks")),
        "forward_price": None,
        "chain": chain,
    }


def h_margin(inst, d, f):
    total = 0.0
    for p in d["positions"]:
        found = inst.sim.market.lookup(p["symbol"], p["exchange"])
        if found is None:
            raise err(400, f"Symbol '{p['symbol']}' not found for exchange '{p['exchange']}'")
        try:
            qty = float(p["quantity"])
            price = float(p["price"] or 0)
        except ValueError:
            raise err(400, f"Invalid quantity or price for {p['symbol']}") from None
        basis = price if price > 0 else inst.sim.market.ltp(found)
        total += inst.account.margin_for(found, p["action"].upper(), int(qty), basis, p["product"])
    return {
        "status": "success",
        "data": {
            "total_margin_required": round(total, 2),
            "span_margin": round(total * 0.7, 2),
            "exposure_margin": round(total * 0.3, 2),
        },
    }


HANDLERS: dict[str, tuple[type[sc.Base] | None, Any]] = {
    "ping": (sc.ApiKeyOnly, h_ping),
    "funds": (sc.ApiKeyOnly, h_funds),
    "orderbook": (sc.ApiKeyOnly, h_orderbook),
    "tradebook": (sc.ApiKeyOnly, h_tradebook),
    "positionbook": (sc.ApiKeyOnly, h_positionbook),
    "holdings": (sc.ApiKeyOnly, h_holdings),
    "openposition": (sc.OpenPosition, h_openposition),
    "orderstatus": (sc.OrderId, h_orderstatus),
    "placeorder": (sc.Order, h_placeorder),
    "placesmartorder": (sc.SmartOrder, h_placesmartorder),
    "splitorder": (sc.SplitOrder, h_splitorder),
    "basketorder": (sc.BasketOrder, h_basketorder),
    "optionsorder": (sc.OptionsOrder, h_optionsorder),
    "modifyorder": (sc.ModifyOrder, h_modifyorder),
    "cancelorder": (sc.OrderId, h_cancelorder),
    "cancelallorder": (sc.StrategyOnly, h_cancelallorder),
    "closeposition": (sc.StrategyOnly, h_closeposition),
    "quotes": (sc.SymbolExchange, h_quotes),
    "multiquotes": (sc.MultiQuotes, h_multiquotes),
    "depth": (sc.SymbolExchange, h_depth),
    "history": (sc.History, h_history),
    "intervals": (sc.ApiKeyOnly, h_intervals),
    "expiry": (sc.Expiry, h_expiry),
    "optionsymbol": (sc.OptionSymbol, h_optionsymbol),
    "optionchain": (sc.OptionChain, h_optionchain),
    "symbol": (sc.SymbolExchange, h_symbol),
    "search": (sc.Search, h_search),
    "margin": (sc.Margin, h_margin),
}


# ====================================================================== control API
def add_control_routes(app: web.Application, inst: Instance) -> None:
    sim = inst.sim

    async def body(request: web.Request) -> dict:
        try:
            data = await request.json()
        except ValueError:
            raise web.HTTPBadRequest(
                text='{"status":"error","message":"body must be JSON"}', content_type="application/json"
            ) from None
        if not isinstance(data, dict):
            raise web.HTTPBadRequest(
                text='{"status":"error","message":"body must be a JSON object"}', content_type="application/json"
            )
        return data

    def bad(message: str) -> web.Response:
        return _resp(400, {"status": "error", "message": message})

    async def price(request: web.Request) -> web.Response:
        d = await body(request)
        market = sim.market
        if "underlying" in d:
            u = ins.UNDERLYINGS.get(str(d["underlying"]).upper())
            if u is None:
                return bad(f"unknown underlying {d['underlying']}")
            if "move_pct" in d:
                try:
                    spot = market.move_underlying(u.name, float(d["move_pct"]))
                except (TypeError, ValueError):
                    return bad("move_pct must be a number")
            elif "ltp" in d:
                spot = market.set_ltp(
                    ins.Instrument(u.name, u.exchange, "index" if u.is_index else "equity", u), float(d["ltp"])
                )
            else:
                return bad("give move_pct or ltp")
            found = market.lookup(u.name, u.exchange)
            return _resp(
                200,
                {"status": "success", "symbol": u.name, "exchange": u.exchange, "ltp": market.ltp(found), "spot": spot},
            )
        found = market.lookup(str(d.get("symbol")), str(d.get("exchange")))
        if found is None:
            return bad(f"unknown symbol {d.get('symbol')} on {d.get('exchange')}")
        try:
            target = float(d["ltp"])
        except (KeyError, TypeError, ValueError):
            return bad("ltp must be a number")
        if not (target > 0 and math.isfinite(target)):
            return bad("ltp must be a positive number")
        new = market.set_ltp(found, target)
        for other in sim.instances:
            other.account.on_tick()
        return _resp(200, {"status": "success", "symbol": found.symbol, "exchange": found.exchange, "ltp": new})

    async def market_ctl(request: web.Request) -> web.Response:
        d = await body(request)
        if "paused" in d:
            sim.market.paused = bool(d["paused"])
        return _resp(
            200, {"status": "success", "paused": sim.market.paused, "tick": sim.market.tick_no, "ts": sim.market.ts_ms}
        )

    async def fault_add(request: web.Request) -> web.Response:
        d = await body(request)
        kind = d.get("kind")
        if kind not in FAULT_KINDS:
            return bad(f"kind must be one of {sorted(FAULT_KINDS)}")
        endpoint = str(d.get("endpoint") or "*")
        if endpoint != "*" and endpoint not in HANDLERS:
            return bad(f"unknown endpoint {endpoint}")
        count = d.get("count")
        if count is not None and (not isinstance(count, int) or count < 1):
            return bad("count must be a positive integer")
        if kind == "status" and int(d.get("value") or 500) not in (500, 502, 503, 504, 429, 403):
            return bad("status must be one of 500, 502, 503, 504, 429, 403")
        inst.faults.append(Fault(endpoint, kind, d.get("value"), count))
        return _resp(200, {"status": "success", "faults": [f.__dict__ for f in inst.faults]})

    async def fault_clear(request: web.Request) -> web.Response:
        inst.faults.clear()
        return _resp(200, {"status": "success", "faults": []})

    async def faults_list(request: web.Request) -> web.Response:
        return _resp(200, {"status": "success", "faults": [f.__dict__ for f in inst.faults]})

    async def ws_ctl(request: web.Request) -> web.Response:
        d = await body(request)
        action = d.get("action")
        feed = inst.feed
        if action == "close":
            await feed.close_all()
        elif action == "stall":
            feed.stalled = True
        elif action == "resume":
            feed.stalled = False
            feed.price_fault = None
            if inst.ws_down:
                await sim.start_ws(inst, inst.ws_port)
        elif action in ("zero_prices", "nan_prices"):
            feed.price_fault = action.split("_")[0]
        elif action == "down":
            await sim.stop_ws(inst)
        elif action == "up":
            if inst.ws_down:
                await sim.start_ws(inst, inst.ws_port)
        else:
            return bad("action must be close, stall, resume, zero_prices, nan_prices, down or up")
        return _resp(200, {"status": "success", **ws_state()})

    def ws_state() -> dict:
        feed = inst.feed
        return {
            "connections": len(feed.clients),
            "authenticated": sum(c.authenticated for c in feed.clients),
            "connections_total": feed.connections_total,
            "stalled": feed.stalled,
            "price_fault": feed.price_fault,
            "down": inst.ws_down,
            "subscriptions": sorted({f"{e}:{s}" for c in feed.clients for (s, e) in c.subs}),
        }

    async def ws_status(request: web.Request) -> web.Response:
        return _resp(200, {"status": "success", **ws_state()})

    async def session(request: web.Request) -> web.Response:
        d = await body(request)
        if not isinstance(d.get("expired"), bool):
            return bad("expired must be true or false")
        inst.session_expired = d["expired"]
        return _resp(200, {"status": "success", "expired": inst.session_expired})

    async def ledger(request: web.Request) -> web.Response:
        orders = sorted(inst.account.orders.values(), key=lambda o: (o.created, o.orderid))
        return _resp(
            200,
            {
                "orders": [
                    {
                        "orderid": o.orderid,
                        "symbol": o.symbol,
                        "exchange": o.exchange,
                        "action": o.action,
                        "quantity": o.quantity,
                        "pricetype": o.pricetype,
                        "product": o.product,
                        "price": o.price,
                        "status": o.status,
                        "ts": int(o.created.timestamp() * 1000),
                        "filled_quantity": o.filled_quantity,
                        "average_price": round(o.average_price, 2),
                        "strategy": o.strategy,
                    }
                    for o in orders
                ]
            },
        )

    async def reset(request: web.Request) -> web.Response:
        try:
            d = await request.json()
        except ValueError:
            d = {}
        inst.reset()
        if isinstance(d, dict) and d.get("market"):
            sim.market.overrides.clear()
            sim.market.paused = False
        return _resp(200, {"status": "success"})

    async def status(request: web.Request) -> web.Response:
        return _resp(
            200,
            {
                "status": "success",
                "name": inst.name,
                "broker": inst.broker,
                "profile": inst.profile,
                "tick": sim.market.tick_no,
                "ts": sim.market.ts_ms,
                "paused": sim.market.paused,
                "session_expired": inst.session_expired,
                "requests": dict(inst.requests),
                "open_orders": len(inst.account.open_orders()),
                "ws": ws_state(),
                "faults": [f.__dict__ for f in inst.faults],
            },
        )

    async def instance_ctl(request: web.Request) -> web.Response:
        d = await body(request)
        target = next((i for i in sim.instances if i.name == d.get("name")), None)
        if target is None:
            return bad(f"unknown instance {d.get('name')}; names are {[i.name for i in sim.instances]}")
        if d.get("action") == "stop":
            if target is inst:
                return bad("an instance cannot stop itself: send this to another instance's port")
            await sim.stop_instance(target)
        elif d.get("action") == "start":
            await sim.start_instance(target)
        else:
            return bad("action must be stop or start")
        return _resp(200, {"status": "success", "name": target.name, "stopped": target.stopped})

    app.router.add_post("/_sim/instance", instance_ctl)
    app.router.add_post("/_sim/price", price)
    app.router.add_post("/_sim/market", market_ctl)
    app.router.add_post("/_sim/fault", fault_add)
    app.router.add_get("/_sim/fault", faults_list)
    app.router.add_delete("/_sim/fault", fault_clear)
    app.router.add_post("/_sim/ws", ws_ctl)
    app.router.add_get("/_sim/ws", ws_status)
    app.router.add_post("/_sim/session", session)
    app.router.add_get("/_sim/ledger", ledger)
    app.router.add_post("/_sim/reset", reset)
    app.router.add_get("/_sim/status", status)


__all__ = ["Simulator", "Instance"]
