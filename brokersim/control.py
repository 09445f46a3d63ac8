"""The /_sim control API: what a test or benchmark uses to steer an instance (prices, the
market clock, faults, the WebSocket feed, the broker session, stop/start) and to read back
what really happened (ledger, status). Mounted on every instance's REST port; not OpenAlgo."""

from __future__ import annotations

import hmac
import math

from aiohttp import web

from . import faults as fl
from . import gate, profiles
from . import instruments as ins
from .faults import PriceFault
from .gate import respond
from .handlers import HANDLERS
from .instance import INSTANCE, Instance


async def _body(request: web.Request) -> dict:
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


def _bad(message: str) -> web.Response:
    return respond(400, {"status": "error", "message": message})


def _faults(inst: Instance) -> list[dict]:
    return [f.to_json() for f in inst.faults]


def _ws_state(inst: Instance) -> dict:
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


# ---------------------------------------------------------------------- market
async def price(request: web.Request) -> web.Response:
    """Move an underlying (its derivatives follow) or pin one instrument's LTP."""
    sim = request.app[INSTANCE].sim
    d = await _body(request)
    market = sim.market
    if "underlying" in d:
        u = ins.UNDERLYINGS.get(str(d["underlying"]).upper())
        if u is None:
            return _bad(f"unknown underlying {d['underlying']}")
        if "move_pct" in d:
            try:
                spot = market.move_underlying(u.name, float(d["move_pct"]))
            except (TypeError, ValueError):
                return _bad("move_pct must be a number")
        elif "ltp" in d:
            spot = market.set_ltp(
                ins.Instrument(u.name, u.exchange, "index" if u.is_index else "equity", u), float(d["ltp"])
            )
        else:
            return _bad("give move_pct or ltp")
        found = market.lookup(u.name, u.exchange)
        ltp = market.ltp(found) if found is not None else spot  # a commodity has no listed spot
        return respond(
            200,
            {"status": "success", "symbol": u.name, "exchange": u.exchange, "ltp": ltp, "spot": spot},
        )
    found = market.lookup(str(d.get("symbol")), str(d.get("exchange")))
    if found is None:
        return _bad(f"unknown symbol {d.get('symbol')} on {d.get('exchange')}")
    try:
        target = float(d["ltp"])
    except (KeyError, TypeError, ValueError):
        return _bad("ltp must be a number")
    if not (target > 0 and math.isfinite(target)):
        return _bad("ltp must be a positive number")
    new = market.set_ltp(found, target)
    # A pinned price should fill resting orders now, on every instance, not at the next tick.
    for other in sim.instances:
        other.account.on_tick()
    return respond(200, {"status": "success", "symbol": found.symbol, "exchange": found.exchange, "ltp": new})


async def market_ctl(request: web.Request) -> web.Response:
    market = request.app[INSTANCE].sim.market
    d = await _body(request)
    if "paused" in d:
        market.paused = bool(d["paused"])
    return respond(200, {"status": "success", "paused": market.paused, "tick": market.tick_no, "ts": market.ts_ms})


# ---------------------------------------------------------------------- faults
async def fault_add(request: web.Request) -> web.Response:
    inst = request.app[INSTANCE]
    try:
        fault = fl.parse_fault(await _body(request), HANDLERS)
    except fl.BadFault as e:
        return _bad(str(e))
    if fault.kind == fl.FaultKind.ORDERBOOK_OMITS:
        fault.known = frozenset(inst.account.orders)  # later orders are the ones left out
    inst.faults.append(fault)
    return respond(200, {"status": "success", "faults": _faults(inst)})


async def fault_clear(request: web.Request) -> web.Response:
    request.app[INSTANCE].faults.clear()
    return respond(200, {"status": "success", "faults": []})


async def faults_list(request: web.Request) -> web.Response:
    return respond(200, {"status": "success", "faults": _faults(request.app[INSTANCE])})


# ---------------------------------------------------------------------- WebSocket feed
async def ws_ctl(request: web.Request) -> web.Response:
    inst = request.app[INSTANCE]
    d = await _body(request)
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
            await inst.sim.start_ws(inst, inst.ws_port)
    elif action in ("zero_prices", "nan_prices"):
        feed.price_fault = PriceFault(action.split("_")[0])
    elif action == "down":
        await inst.sim.stop_ws(inst)
    elif action == "up":
        if inst.ws_down:
            await inst.sim.start_ws(inst, inst.ws_port)
    else:
        return _bad("action must be close, stall, resume, zero_prices, nan_prices, down or up")
    return respond(200, {"status": "success", **_ws_state(inst)})


async def ws_status(request: web.Request) -> web.Response:
    return respond(200, {"status": "success", **_ws_state(request.app[INSTANCE])})


# ---------------------------------------------------------------------- instance
async def session(request: web.Request) -> web.Response:
    inst = request.app[INSTANCE]
    d = await _body(request)
    if not isinstance(d.get("expired"), bool):
        return _bad("expired must be true or false")
    inst.session_expired = d["expired"]
    return respond(200, {"status": "success", "expired": inst.session_expired})


def _profile_state(inst: Instance) -> dict:
    return {
        "profile": inst.broker_profile.name,
        "wire": inst.profile,
        "broker": inst.broker,
        "pending_approvals": sorted(inst.profile_state.queued),
    }


async def profile_get(request: web.Request) -> web.Response:
    return respond(200, {"status": "success", **_profile_state(request.app[INSTANCE])})


async def profile_set(request: web.Request) -> web.Response:
    """Switch the instance's broker profile (reset returns it to the one it started with)."""
    inst = request.app[INSTANCE]
    d = await _body(request)
    try:
        inst.set_profile(profiles.get(str(d.get("profile"))))
    except ValueError as e:
        return _bad(str(e))
    return respond(200, {"status": "success", **_profile_state(inst)})


async def approve(request: web.Request) -> web.Response:
    """Approve a semi-auto order queued in the Action Center: it is placed now, as it would have
    been; `result` is what the placement route would have answered."""
    inst = request.app[INSTANCE]
    d = await _body(request)
    try:
        name, data = profiles.approve(inst.profile_state, d.get("pending_order_id"))
    except gate.Reply as r:
        return respond(r.status, r.body)
    code, out = gate.run_handler(inst, name, HANDLERS[name][1], data, None)
    body = {"status": "success", "pending_order_id": d["pending_order_id"], "http_status": code, "result": out}
    return respond(200, body)


async def rollover(request: web.Request) -> web.Response:
    """Run a stage of the daily rollover on this instance now, whatever the market clock says."""
    inst = request.app[INSTANCE]
    d = await _body(request)
    exchanges = d.get("exchanges")
    if exchanges is not None and not (isinstance(exchanges, list) and all(isinstance(e, str) for e in exchanges)):
        return _bad("exchanges must be a list of exchange names")
    try:
        done = inst.rollover(str(d.get("stage")), exchanges)
    except ValueError as e:
        return _bad(str(e))
    return respond(200, {"status": "success", "stage": d["stage"], **done})


async def ledger(request: web.Request) -> web.Response:
    """Every order the engine really holds, whatever the client was told (faults included), of
    every day since the last reset: a rollover clears the books, not the ledger."""
    inst = request.app[INSTANCE]
    acc = inst.account
    orders = [*acc.archive, *sorted(acc.orders.values(), key=lambda o: (o.created, o.orderid))]
    return respond(
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
                    "placed_by": o.placed_by,
                    "remark": o.remark,
                    "session": o.session,
                }
                for o in orders
            ]
        },
    )


async def reset(request: web.Request) -> web.Response:
    inst = request.app[INSTANCE]
    try:
        d = await request.json()
    except ValueError:
        d = {}  # an empty body is a plain reset
    inst.reset()
    if isinstance(d, dict) and d.get("market"):
        inst.sim.market.overrides.clear()
        inst.sim.market.paused = False
    return respond(200, {"status": "success"})


async def status(request: web.Request) -> web.Response:
    inst = request.app[INSTANCE]
    market = inst.sim.market
    return respond(
        200,
        {
            "status": "success",
            "name": inst.name,
            "broker": inst.broker,
            "profile": inst.profile,
            "broker_profile": inst.broker_profile.name,
            "pending_approvals": sorted(inst.profile_state.queued),
            "tick": market.tick_no,
            "ts": market.ts_ms,
            "paused": market.paused,
            "session_expired": inst.session_expired,
            "requests": dict(inst.requests),
            "open_orders": len(inst.account.open_orders()),
            "session": inst.account.session,
            "auto_rollover": inst.sim.auto_rollover,
            "ws": _ws_state(inst),
            "faults": _faults(inst),
        },
    )


async def instance_ctl(request: web.Request) -> web.Response:
    """Stop or start another instance, as if that OpenAlgo server went down and came back."""
    inst = request.app[INSTANCE]
    sim = inst.sim
    d = await _body(request)
    target = next((i for i in sim.instances if i.name == d.get("name")), None)
    if target is None:
        return _bad(f"unknown instance {d.get('name')}; names are {[i.name for i in sim.instances]}")
    if d.get("action") == "stop":
        if target is inst:
            # Its own runner would be torn down under the request that asked for it.
            return _bad("an instance cannot stop itself: send this to another instance's port")
        await sim.stop_instance(target)
    elif d.get("action") == "start":
        await sim.start_instance(target)
    else:
        return _bad("action must be stop or start")
    return respond(200, {"status": "success", "name": target.name, "stopped": target.stopped})


ROUTES = (
    ("POST", "/_sim/instance", instance_ctl),
    ("POST", "/_sim/price", price),
    ("POST", "/_sim/market", market_ctl),
    ("POST", "/_sim/fault", fault_add),
    ("GET", "/_sim/fault", faults_list),
    ("DELETE", "/_sim/fault", fault_clear),
    ("POST", "/_sim/ws", ws_ctl),
    ("GET", "/_sim/ws", ws_status),
    ("POST", "/_sim/session", session),
    ("GET", "/_sim/ledger", ledger),
    ("POST", "/_sim/reset", reset),
    ("GET", "/_sim/status", status),
    ("GET", "/_sim/profile", profile_get),
    ("POST", "/_sim/profile", profile_set),
    ("POST", "/_sim/approve", approve),
    ("POST", "/_sim/rollover", rollover),
)


def _presented_token(request: web.Request) -> str:
    auth = request.headers.get("Authorization", "")
    if auth.startswith("Bearer "):
        return auth[len("Bearer ") :].strip()
    return request.headers.get("X-Sim-Token", "")


def guarded(handler):
    """The control API steers the whole paper broker: with a control token set (brokersim listens
    beyond loopback), a request without it is refused before the handler reads anything."""

    async def view(request: web.Request) -> web.Response:
        token = request.app[INSTANCE].sim.control_token
        if token and not hmac.compare_digest(_presented_token(request).encode(), token.encode()):
            return respond(403, {"status": "error", "message": "the /_sim control API needs its control token"})
        return await handler(request)

    return view


def add_routes(app: web.Application) -> None:
    for method, path, handler in ROUTES:
        app.router.add_route(method, path, guarded(handler))
