"""Options by offset from ATM: resolve a symbol, place an order on it, the option chain."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING

from .. import calendar as cal
from .. import instruments as ins
from .. import pricing
from . import orders
from .reply import err

if TYPE_CHECKING:
    from ..instance import Instance

OFFSET_ERROR = "Offset must be ATM, ITM1-ITM50, or OTM1-OTM50"


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


def optionsymbol(inst: Instance, d: dict, fault: dict | None) -> dict:
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


def optionsorder(inst: Instance, d: dict, fault: dict | None) -> dict:
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
        split = orders.splitorder(inst, dict(order, splitsize=d["splitsize"]), fault)
        base.update(total_quantity=split["total_quantity"], split_size=split["split_size"], results=split["results"])
        return base
    base["orderid"] = orders.place_order(inst, order, fault).orderid
    return base


def optionchain(inst: Instance, d: dict, fault: dict | None) -> dict:
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
