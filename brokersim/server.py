"""The two aiohttp apps each instance serves: REST (OpenAlgo's /api/v1 behind the gate, plus
the /_sim control API) and the WebSocket feed. The Simulator runs them on the instance's ports."""

from __future__ import annotations

from aiohttp import web

from . import control, gate
from .handlers import HANDLERS
from .instance import INSTANCE, Instance


def make_rest_app(inst: Instance) -> web.Application:
    app = web.Application(client_max_size=4 * 1024 * 1024)
    app[INSTANCE] = inst
    for name, (schema_cls, handler) in HANDLERS.items():
        view = gate.view(gate.Endpoint(name, schema_cls() if schema_cls is not None else None, handler))
        # Clients call both spellings; OpenAlgo accepts either.
        app.router.add_post(f"/api/v1/{name}", view)
        app.router.add_post(f"/api/v1/{name}/", view)
    control.add_routes(app)
    return app


def make_ws_app(inst: Instance) -> web.Application:
    app = web.Application()
    app[INSTANCE] = inst
    # OpenAlgo's WebSocket proxy is reached at the root or at /ws depending on the deployment.
    app.router.add_get("/", inst.feed.handle)
    app.router.add_get("/ws", inst.feed.handle)
    return app
