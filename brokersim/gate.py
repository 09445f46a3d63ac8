"""What every /api/v1 request passes through before and after its handler.

The order is OpenAlgo's, and clients can see it, so it is fixed here in one place (`serve`):

1. rate limit: Flask-Limiter's decorator runs before the view, so even a request with a bad
   key or a bad body takes a token, and a limited request draws no fault;
2. armed faults are drawn for the endpoint; the ones that act on the request (latency,
   status, hang, reset) act now, so a status fault answers whatever the body holds;
3. the body is read and validated against the endpoint's schema;
4. the API key, then the broker session, are checked;
5. the handler runs (with any execution fault for the engine), and the response may still
   be spoiled by an after-fault (connection dropped, JSON truncated, orderid or status left
   out).

A deferred fault (late_execute) takes the request through steps 3 and 4, resets the
connection, and runs step 5 later with no one to answer.

Each step is a function that returns normally to pass the request on or raises Reply with
the answer, so each can be tested on its own.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import struct
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from aiohttp import web

from . import faults as fl
from . import profiles, wire
from . import schemas as sc
from .faults import Fault, FaultKind
from .handlers.reply import Reply
from .instance import INSTANCE
from .ratelimit import MovingWindow

if TYPE_CHECKING:
    from .handlers import Handler
    from .instance import Instance

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
# Routed through the sandbox in analyzer mode: their responses carry "mode": "analyze".
ANALYZER_ROUTED = (ORDER_WRITERS - {"margin"}) | {"funds", "orderbook", "tradebook", "positionbook", "holdings"}
# Order routes are limited by ORDER_RATE_LIMIT (a window per route and client); placesmartorder
# has a limiter of its own, sized the same here; every other route is under API_RATE_LIMIT.
BUCKET_OF = {
    "placeorder": "order",
    "modifyorder": "order",
    "cancelorder": "order",
    "optionsorder": "order",
    "placesmartorder": "smart",
}
BAD_BODY = {"status": "error", "message": "An unexpected error occurred while processing request"}


@dataclass(frozen=True)
class Endpoint:
    name: str
    schema: sc.Base | None  # an instance: marshmallow schemas are reusable
    handler: Handler


def respond(status: int, body: Any) -> web.Response:
    return web.json_response(body, status=status)


# ---------------------------------------------------------------------- 1. rate limit
def bucket_for(inst: Instance, endpoint: str) -> MovingWindow:
    return inst.limits[BUCKET_OF.get(endpoint, "api")]


def check_rate_limit(bucket: MovingWindow, endpoint: str, client: str) -> None:
    if not bucket.hit(endpoint, client):
        raise Reply(429, {"message": bucket.text})


# ---------------------------------------------------------------------- 2. faults before
async def apply_before(
    request: web.Request, endpoint: str, before: list[Fault], profile: profiles.Profile = profiles.CLEAN
) -> web.StreamResponse | None:
    """Act on the request-side faults in arming order; a response means stop here."""
    for f in before:
        if f.kind == FaultKind.LATENCY:
            await asyncio.sleep(float(f.value or 0) / 1000.0)
        elif f.kind == FaultKind.STATUS:
            code = int(f.value or 500)
            # A 500 is the broker failing: some brokers' books turn that into an empty book.
            empty = profiles.error_as_empty(profile, endpoint) if code == 500 else None
            return respond(200, empty) if empty is not None else status_fault(code, endpoint)
        elif f.kind == FaultKind.HANG:
            await asyncio.sleep(float(f.value or 120))
            abort(request, rst=False)
            return web.Response(status=504)
        elif f.kind == FaultKind.RESET:
            abort(request, rst=True)
            return web.Response(status=500)
    return None


def status_fault(code: int, endpoint: str) -> web.Response:
    """The body a real deployment sends with that status: the limiter's, the key check's, or
    the reverse proxy's HTML page when OpenAlgo itself is down."""
    if code == 429:
        return respond(429, {"message": "10 per 1 second"})
    if code == 403:
        return respond(403, {"status": "error", "message": INVALID_KEY})
    if code in (502, 503, 504):
        reason = {502: "Bad Gateway", 503: "Service Temporarily Unavailable", 504: "Gateway Time-out"}[code]
        html = f"<html><head><title>{code} {reason}</title></head><body><h1>{code} {reason}</h1></body></html>"
        return web.Response(status=code, text=html, content_type="text/html")
    msg = "Failed to place order due to internal error" if endpoint in ORDER_WRITERS else "An unexpected error occurred"
    return respond(code, {"status": "error", "message": msg})


def abort(request: web.Request, rst: bool) -> None:
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


# ---------------------------------------------------------------------- 3. body
async def read_json(request: web.Request) -> Any:
    try:
        return await request.json()
    except (ValueError, UnicodeDecodeError):
        # Not JSON at all: OpenAlgo answers with its generic 500, not a validation 400.
        raise Reply(500, BAD_BODY) from None


def validate(endpoint: str, schema: sc.Base | None, body: Any) -> dict:
    """The body loaded through the schema. Order writers format the error dict with str()
    before sending it, the other endpoints send the dict itself."""
    as_text = endpoint in ORDER_WRITERS
    try:
        return schema.load(body) if schema is not None else body
    except sc.ValidationError as e:
        raise Reply(400, {"status": "error", "message": str(e.messages) if as_text else e.messages}) from None
    except Exception:  # body not a dict etc.
        message = {"_schema": ["Invalid input type."]}
        raise Reply(400, {"status": "error", "message": str(message) if as_text else message}) from None


# ---------------------------------------------------------------------- 4. key and session
def authenticate(inst: Instance, endpoint: str, data: dict) -> None:
    """OpenAlgo answers an expired broker session exactly like a bad key."""
    if data.get("apikey") != inst.api_key:
        raise Reply(403, {"status": "error", "message": INVALID_KEY})
    if inst.session_expired and endpoint not in KEY_ONLY:
        empty = profiles.error_as_empty(inst.broker_profile, endpoint)
        if empty is not None:
            raise Reply(200, empty)
        raise Reply(403, {"status": "error", "message": INVALID_KEY})


# ---------------------------------------------------------------------- 5. handler and after
def execute(inst: Instance, ep: Endpoint, data: dict, fault: Fault | None) -> tuple[int, Any]:
    """The handler's answer, unless the broker profile answers instead (dead token, semi-auto)."""
    instead = profiles.intercept(inst.broker_profile, inst.profile_state, ep.name, data)
    if instead is not None:
        return instead
    return run_handler(inst, ep.name, ep.handler, data, fault)


def run_handler(inst: Instance, name: str, handler: Handler, data: dict, fault: Fault | None) -> tuple[int, Any]:
    try:
        status, out = 200, handler(inst, data, fault.for_engine() if fault else None)
    except Reply as r:
        status, out = r.status, r.body
    if status == 200 and name in ANALYZER_ROUTED and inst.profile == wire.SANDBOX and isinstance(out, dict):
        out.setdefault("mode", "analyze")
    return status, out


def finish(request: web.Request, status: int, out: Any, after: Fault | None) -> web.StreamResponse:
    """The response, unless an after-fault spoils it: the work is done either way."""
    kind = after.kind if after else None
    if kind == FaultKind.DROP_AFTER_EXECUTE:
        abort(request, rst=True)
        return web.Response(status=500)
    if kind == FaultKind.MALFORMED:
        text = json.dumps(out)
        return web.Response(status=200, text=text[: max(len(text) // 2, 1)] + "<!--", content_type="application/json")
    if kind == FaultKind.NO_ORDERID and status == 200:
        return respond(200, {"status": "success"})
    if kind == FaultKind.NO_STATUS:
        if after.value == "empty":
            return web.Response(status=200, body=b"", content_type="application/json")
        return respond(200, {})
    return respond(status, out)


# ---------------------------------------------------------------------- deferred
async def defer(inst: Instance, ep: Endpoint, request: web.Request, armed: fl.Armed) -> web.StreamResponse:
    """late_execute: reset the connection at once, and run the request, if it was a valid and
    authenticated one, `value` seconds later, as it would have run now (the engine's checks
    then, the execution fault it drew). A reset of the instance meanwhile drops it."""
    try:
        data = validate(ep.name, ep.schema, await read_json(request))
        authenticate(inst, ep.name, data)
    except Reply:
        data = None
    abort(request, rst=True)
    if data is not None:
        fault = armed.execution
        inst.call_later(float(armed.deferred.value or 0), lambda: execute(inst, ep, data, fault))
    return web.Response(status=500)


# ---------------------------------------------------------------------- the whole gate
async def serve(inst: Instance, ep: Endpoint, request: web.Request) -> web.StreamResponse:
    inst.requests[ep.name] += 1
    try:
        check_rate_limit(bucket_for(inst, ep.name), ep.name, request.remote or "?")
        armed = fl.arm(inst.faults, ep.name)
        early = await apply_before(request, ep.name, armed.before, inst.broker_profile)
        if early is not None:
            return early
        if armed.deferred is not None:
            return await defer(inst, ep, request, armed)
        data = validate(ep.name, ep.schema, await read_json(request))
        authenticate(inst, ep.name, data)
    except Reply as r:
        return respond(r.status, r.body)
    status, out = execute(inst, ep, data, armed.execution)
    return finish(request, status, out, armed.after)


def view(ep: Endpoint):
    """The aiohttp handler of one endpoint; the instance comes from the app it is mounted on."""

    async def handle(request: web.Request) -> web.StreamResponse:
        return await serve(request.app[INSTANCE], ep, request)

    return handle
