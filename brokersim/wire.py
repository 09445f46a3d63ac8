"""Response shapes: how OpenAlgo renders orders, trades, positions and funds.

Two profiles, because real deployments differ: `sandbox` (analyzer mode: numbers, extra
keys, `price_type` in orderstatus, "mode": "analyze") and `live` (Zerodha-like: strings
with two decimals, minimal keys, `DD-Mon-YYYY` timestamps). Clients must cope with both.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Container

from . import calendar as cal
from .engine import ACTIVE_STATUSES, BY_BROKER, COMPLETE, Account, Order

SANDBOX, LIVE = "sandbox", "live"
# Brokers OpenAlgo supports: instances are dealt these names in turn, and the feed lists them.
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


def _r(x: float) -> float:
    return round(x + 0.0, 2)


def _s(x: float) -> str:
    return f"{x:.2f}"


def ts_sandbox(t: dt.datetime) -> str:
    return t.astimezone(cal.IST).strftime("%Y-%m-%d %H:%M:%S")


def ts_live(t: dt.datetime) -> str:
    return t.astimezone(cal.IST).strftime("%d-%b-%Y %H:%M:%S")


def order_row(o: Order, profile: str, *, for_status: bool = False) -> dict:
    avg = 0.0 if o.hide_avg_polls > 0 else o.average_price
    if profile == LIVE:
        row = {
            "action": o.action,
            "symbol": o.symbol,
            "exchange": o.exchange,
            "orderid": o.orderid,
            "product": o.product,
            "quantity": str(o.quantity),
            "price": 0.0 if o.pricetype == "MARKET" else o.price,
            "pricetype": o.pricetype,
            "order_status": o.status,
            "trigger_price": o.trigger_price,
            "timestamp": ts_live(o.updated),
        }
        if for_status:
            row["average_price"] = _r(avg) if o.status == COMPLETE else 0.0
        return row
    row = {
        "action": o.action,
        "symbol": o.symbol,
        "exchange": o.exchange,
        "orderid": o.orderid,
        "product": o.product,
        "quantity": o.quantity,
        "price": o.price,
        ("price_type" if for_status else "pricetype"): o.pricetype,
        "order_status": o.status,
        "trigger_price": o.trigger_price,
        "average_price": _r(avg),
        "filled_quantity": o.filled_quantity,
        "pending_quantity": o.pending_quantity,
        "timestamp": ts_sandbox(o.updated),
        "strategy": o.strategy,
    }
    if not for_status:
        row["rejection_reason"] = o.rejection_reason
    if o.remark:
        row["remark"] = o.remark
    if o.placed_by == BY_BROKER:
        del row["strategy"]  # the broker's own order carries no tag of ours
    return row


def orderbook(acc: Account, profile: str, shown: Container[str] | None = None) -> dict:
    """The orderbook; with `shown`, only the orders whose orderid is in it."""
    orders = [o for o in acc.orders.values() if shown is None or o.orderid in shown]
    orders.sort(key=lambda o: (o.created, o.orderid), reverse=True)
    stats = {
        "total_buy_orders": sum(o.action == "BUY" for o in orders),
        "total_sell_orders": sum(o.action == "SELL" for o in orders),
        "total_completed_orders": sum(o.status == COMPLETE for o in orders),
        "total_open_orders": sum(o.status == "open" for o in orders),
        "total_rejected_orders": sum(o.status == "rejected" for o in orders),
    }
    if profile == SANDBOX:
        stats["total_trigger_pending_orders"] = sum(o.status == "trigger pending" for o in orders)
    return {"orders": [order_row(o, profile) for o in orders], "statistics": stats}


def tradebook(acc: Account, profile: str) -> list[dict]:
    rows = []
    for t in reversed(acc.trades):
        row = {
            "action": t.action,
            "symbol": t.symbol,
            "exchange": t.exchange,
            "orderid": t.orderid,
            "product": t.product,
            "quantity": t.quantity,
            "average_price": t.price,
            "timestamp": t.ts.astimezone(cal.IST).strftime("%H:%M:%S") if profile == LIVE else ts_sandbox(t.ts),
            "trade_value": _r(t.price * t.quantity * t.multiplier),
        }
        if profile == SANDBOX:
            row.update({"tradeid": t.tradeid, "price": t.price})
            if t.placed_by != BY_BROKER:
                row["strategy"] = t.strategy
        rows.append(row)
    return rows


def positionbook(acc: Account, profile: str, positions: dict | None = None) -> dict:
    """The positionbook of the live positions, or of `positions` (a past snapshot) if given."""
    rows = []
    tot_unreal = tot_real = 0.0
    for pos in (acc.positions if positions is None else positions).values():
        inst = acc.market.lookup(pos.symbol, pos.exchange)
        ltp = acc.market.ltp(inst) if inst else 0.0
        unreal = acc.unrealized(pos)
        pnl = pos.realized_pnl + unreal
        tot_unreal += unreal
        tot_real += pos.realized_pnl
        if profile == LIVE:
            rows.append(
                {
                    "symbol": pos.symbol,
                    "exchange": pos.exchange,
                    "product": pos.product,
                    "quantity": str(pos.quantity),
                    "average_price": _s(pos.average_price),
                    "ltp": _s(ltp),
                    "pnl": _s(pnl),
                }
            )
        else:
            invested = abs(pos.average_price * pos.quantity * pos.multiplier)
            rows.append(
                {
                    "symbol": pos.symbol,
                    "exchange": pos.exchange,
                    "product": pos.product,
                    "quantity": pos.quantity,
                    "average_price": _r(pos.average_price) if pos.quantity else 0.0,
                    "ltp": ltp,
                    "pnl": _r(pnl),
                    "pnlpercent": _r(unreal / invested * 100) if invested else 0.0,
                    "unrealized_pnl": _r(unreal),
                    "today_realized_pnl": _r(pos.realized_pnl),
                    "total_pnl_today": _r(pnl),
                    "lot_size": acc.lot_size(inst) if inst else 1,
                }
            )
    out = {"data": rows}
    if profile == SANDBOX:
        out.update(
            {
                "total_pnl": _r(tot_real + tot_unreal),
                "total_unrealized_pnl": _r(tot_unreal),
                "total_today_realized_pnl": _r(tot_real),
                "total_pnl_today": _r(tot_real + tot_unreal),
            }
        )
    return out


def holdings(acc: Account, profile: str) -> dict:
    rows = []
    total_value = total_inv = 0.0
    for h in acc.holdings:
        inst = acc.market.lookup(h.symbol, h.exchange)
        ltp = acc.market.ltp(inst) if inst else h.average_price
        inv = h.average_price * h.quantity
        val = ltp * h.quantity
        total_inv += inv
        total_value += val
        row = {
            "symbol": h.symbol,
            "exchange": h.exchange,
            "product": "CNC",
            "quantity": h.quantity,
            "pnl": _r(val - inv),
            "pnlpercent": _r((val - inv) / inv * 100) if inv else 0.0,
            "average_price": _r(h.average_price),
            "ltp": ltp,
        }
        if profile == SANDBOX:
            row["current_value"] = _r(val)
        rows.append(row)
    pnl = total_value - total_inv
    return {
        "holdings": rows,
        "statistics": {
            "totalholdingvalue": _r(total_value),
            "totalinvvalue": _r(total_inv),
            "totalprofitandloss": _r(pnl),
            "totalpnlpercentage": _r(pnl / total_inv * 100) if total_inv else 0.0,
        },
    }


def funds(acc: Account, profile: str, started: dt.datetime) -> dict:
    real = acc.realized_pnl
    unreal = acc.unrealized_pnl
    if profile == LIVE:
        return {
            "availablecash": _s(acc.available_cash),
            "collateral": "0.00",
            "m2mrealized": _s(real),
            "m2munrealized": _s(unreal),
            "utiliseddebits": _s(acc.used_margin),
        }
    return {
        "availablecash": _r(acc.available_cash),
        "collateral": 0.0,
        "m2mrealized": _r(real),
        "m2munrealized": _r(unreal),
        "utiliseddebits": _r(acc.used_margin),
        "grossexposure": _r(sum(o.blocked_margin for o in acc.orders.values() if o.status in ACTIVE_STATUSES)),
        "totalpnl": _r(real + unreal),
        "total_realized_pnl": _r(real),
        "today_realized_pnl": _r(real),
        "last_reset": ts_sandbox(started),
        "reset_count": 0,
    }
