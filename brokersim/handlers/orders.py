"""Order writers: place (plain, smart, split, basket), modify, cancel, close everything."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from .. import wire
from ..engine import Order, OrderError
from .reply import Reply, err

if TYPE_CHECKING:
    from ..instance import Instance


def place_order(inst: Instance, d: dict, fault: dict | None) -> Order:
    """Place one order from a request body; an engine refusal becomes a 400 Reply (with the
    orderid when the engine recorded the rejected order)."""
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


def placeorder(inst: Instance, d: dict, fault: dict | None) -> dict:
    return {"status": "success", "orderid": place_order(inst, d, fault).orderid}


def placesmartorder(inst: Instance, d: dict, fault: dict | None) -> dict:
    current = inst.account.net_quantity(d["symbol"], d["exchange"], d["product"])
    target = int(d["position_size"])
    if target == current and target != 0:
        return {"status": "success", "message": "Positions Already Matched. No Action needed."}
    if target == 0 and current == 0:
        if d["quantity"] == 0:
            return {"status": "success", "message": "No OpenPosition Found. Not placing Exit order."}
        return placeorder(inst, d, fault)
    diff = target - current
    order = dict(d, action="BUY" if diff > 0 else "SELL", quantity=abs(diff))
    return {"status": "success", "orderid": place_order(inst, order, fault).orderid}


def splitorder(inst: Instance, d: dict, fault: dict | None) -> dict:
    total, size = int(d["quantity"]), int(d["splitsize"])
    n = math.ceil(total / size)
    if n > 100:
        raise err(400, "Total number of orders would exceed maximum limit of 100")
    results = []
    for k in range(n):
        q = min(size, total - k * size)
        try:
            o = place_order(inst, dict(d, quantity=q), fault)
            results.append({"order_num": k + 1, "quantity": q, "status": "success", "orderid": o.orderid})
        except Reply as r:
            results.append({"order_num": k + 1, "quantity": q, "status": "error", "message": r.body["message"]})
    return {"status": "success", "total_quantity": total, "split_size": size, "results": results}


def basketorder(inst: Instance, d: dict, fault: dict | None) -> dict:
    orders = sorted(d["orders"], key=lambda o: o["action"].upper() != "BUY")  # BUYs first
    results = []
    for o in orders:
        row = {"symbol": o["symbol"], "exchange": o["exchange"], "product": o["product"]}
        try:
            placed = place_order(inst, dict(o, strategy=d["strategy"]), fault)
            row.update(status="success", orderid=placed.orderid)
        except Reply as r:
            row.update(status="error", message=r.body["message"])
        results.append(row)
    return {"status": "success", "results": results}


def modifyorder(inst: Instance, d: dict, fault: dict | None) -> dict:
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


def cancelorder(inst: Instance, d: dict, fault: dict | None) -> dict:
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


def cancelallorder(inst: Instance, d: dict, fault: dict | None) -> dict:
    done = [inst.account.cancel(o.orderid).orderid for o in inst.account.open_orders()]
    return {
        "status": "success",
        "message": f"Canceled {len(done)} orders. Failed to cancel 0 orders.",
        "canceled_orders": done,
        "failed_cancellations": [],
    }


def closeposition(inst: Instance, d: dict, fault: dict | None) -> dict:
    closed = failed = 0
    for pos in list(inst.account.positions.values()):
        if pos.quantity == 0:
            continue
        try:
            place_order(
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
