"""The books an account shows: orders, trades, positions, holdings, one order's status."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .. import profiles, wire
from ..faults import FaultKind
from .reply import err

if TYPE_CHECKING:
    from ..instance import Instance


def orderbook(inst: Instance, d: dict, fault: dict | None) -> dict:
    shown = None
    if fault and fault["kind"] == FaultKind.ORDERBOOK_OMITS:
        shown = fault.get("known", frozenset())  # the orders known when the fault was armed
    book = wire.orderbook(inst.account, inst.profile, shown)
    profiles.shape_orders(inst.broker_profile, inst.profile_state, book["orders"], inst.account.orders)
    return {"status": "success", "data": book}


def tradebook(inst: Instance, d: dict, fault: dict | None) -> dict:
    rows = wire.tradebook(inst.account, inst.profile)
    if not inst.broker_profile.strategy_field:
        for r in rows:
            r.pop("strategy", None)
    return {"status": "success", "data": rows}


def positionbook(inst: Instance, d: dict, fault: dict | None) -> dict:
    positions = None
    if fault and fault["kind"] == FaultKind.POSITIONBOOK_LAG:
        acc = inst.account
        positions = acc.positions_as_of(acc.clock() - float(fault["value"] or 0))
    return {"status": "success", **wire.positionbook(inst.account, inst.profile, positions)}


def holdings(inst: Instance, d: dict, fault: dict | None) -> dict:
    return {"status": "success", "data": wire.holdings(inst.account, inst.profile)}


def openposition(inst: Instance, d: dict, fault: dict | None) -> dict:
    q = inst.account.net_quantity(d["symbol"], d["exchange"], d["product"])
    return {"status": "success", "quantity": str(q) if inst.profile == wire.LIVE else q}


def orderstatus(inst: Instance, d: dict, fault: dict | None) -> dict:
    o = inst.account.get(d["orderid"])
    if o is None:
        raise err(404, f"Order {d['orderid']} not found")
    row = wire.order_row(o, inst.profile, for_status=True)
    if inst.broker_profile.status_text is not None:
        row["order_status"] = profiles.order_status(
            inst.broker_profile, inst.profile_state, o, inst.account.orders.values()
        )
    else:
        o.pending_reads = max(o.pending_reads - 1, 0)
    if not inst.broker_profile.strategy_field:
        row.pop("strategy", None)
    if o.hide_avg_polls > 0 and o.status == "complete":
        o.hide_avg_polls -= 1
    return {"status": "success", "data": row}
