"""Market data over REST: quotes, depth, candles and the intervals they come in."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .. import instruments as ins
from ..market import INTERVAL_SECONDS
from .reply import Reply, err

if TYPE_CHECKING:
    from ..instance import Instance


def _lookup(inst: Instance, symbol: str, exchange: str) -> ins.Instrument:
    found = inst.sim.market.lookup(symbol, exchange)
    if found is None:
        raise err(
            400,
            f"Symbol '{symbol}' not found for exchange '{exchange}'. Please verify the symbol "
            "name and ensure master contracts are downloaded.",
        )
    return found


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


def quotes(inst: Instance, d: dict, fault: dict | None) -> dict:
    return {"status": "success", "data": _quote_dict(inst.sim.market.quote(_lookup(inst, d["symbol"], d["exchange"])))}


def multiquotes(inst: Instance, d: dict, fault: dict | None) -> dict:
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


def depth(inst: Instance, d: dict, fault: dict | None) -> dict:
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


def history(inst: Instance, d: dict, fault: dict | None) -> dict:
    found = _lookup(inst, d["symbol"], d["exchange"])
    if d["interval"] not in INTERVAL_SECONDS:
        raise err(400, f"Interval '{d['interval']}' is not supported by this broker. Use /intervals to list them")
    if d["end_date"] < d["start_date"]:
        raise err(400, "end_date must not be before start_date")
    return {"status": "success", "data": inst.sim.market.history(found, d["interval"], d["start_date"], d["end_date"])}


def intervals(inst: Instance, d: dict, fault: dict | None) -> dict:
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
