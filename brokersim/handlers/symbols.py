"""The instrument master: one symbol, search by words, expiries of an underlying."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .. import calendar as cal
from .. import instruments as ins
from .reply import err

if TYPE_CHECKING:
    from ..instance import Instance


def symbol(inst: Instance, d: dict, fault: dict | None) -> dict:
    found = inst.sim.market.lookup(d["symbol"], d["exchange"])
    if found is None:
        raise err(404, f"Symbol {d['symbol']} not found in exchange {d['exchange']}")
    return {"status": "success", "data": ins.symbol_info(found, inst.account.in_contracts(found))}


def search(inst: Instance, d: dict, fault: dict | None) -> dict:
    words = d["query"].upper().split()
    rows = []
    market = inst.sim.market
    for item in ins.all_instruments(market.listing_day, market.listing_day_for("MCX")):
        if d.get("exchange") and item.exchange != d["exchange"]:
            continue
        if all(w in item.symbol for w in words):
            rows.append(ins.symbol_info(item, inst.account.in_contracts(item)))
            if len(rows) >= 500:
                break
    if not rows:
        return {"status": "success", "message": "No matching symbols found", "data": []}
    return {"status": "success", "message": f"Found {len(rows)} matching symbols", "data": rows}


def expiry(inst: Instance, d: dict, fault: dict | None) -> dict:
    u = ins.UNDERLYINGS.get(d["symbol"].upper())
    if u is None or u.fo_exchange != d["exchange"]:
        raise err(404, f"No expiry dates found for {d['symbol']} in {d['exchange']}")
    today = inst.sim.market.listing_day_for(u.fo_exchange)
    dates = ins.option_expiries(u, today) if d["instrumenttype"] == "options" else ins.future_expiries(u, today)
    return {
        "status": "success",
        "message": f"Found {len(dates)} expiry dates for {u.name} {d['instrumenttype']} in {d['exchange']}",
        "data": [cal.fmt_dd_mmm_yy(x) for x in dates],
    }
