"""Session and money: ping, funds, and the margin a basket of orders would block."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .. import wire
from .reply import err

if TYPE_CHECKING:
    from ..instance import Instance


def ping(inst: Instance, d: dict, fault: dict | None) -> dict:
    return {"status": "success", "data": {"message": "pong", "broker": inst.broker}}


def funds(inst: Instance, d: dict, fault: dict | None) -> dict:
    return {"status": "success", "data": wire.funds(inst.account, inst.profile, inst.sim.started)}


def margin(inst: Instance, d: dict, fault: dict | None) -> dict:
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
