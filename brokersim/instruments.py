"""Tradable instruments and OpenAlgo symbology.

Pure module. Symbols follow OpenAlgo's broker-independent format:
equity `RELIANCE`; future `NIFTY25NOV25FUT`; option `NIFTY25NOV2524000CE` (strike without a
trailing `.0`). Options on NSE indices trade on NFO, on BSE indices on BFO.

MCX commodities (CRUDEOIL, CRUDEOILM, GOLDM, NATURALGAS) are listed as monthly futures only
(`CRUDEOIL19DEC26FUT` on MCX): no spot instrument and no options. Their lot sizes are in the
units the price is quoted in (barrels, 10 g, mmBtu), as most brokers count them; Zerodha counts
contracts instead, which the broker profile applies per account (see engine.Account.lot_size).
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from functools import lru_cache

from . import calendar as cal

EXCHANGES = (
    "NSE",
    "NFO",
    "CDS",
    "BSE",
    "BFO",
    "BCD",
    "MCX",
    "NCDEX",
    "NCO",
    "NSE_INDEX",
    "BSE_INDEX",
    "MCX_INDEX",
    "GLOBAL_INDEX",
    "CRYPTO",
)
FNO_EXCHANGES = ("NFO", "BFO", "MCX", "CDS", "NCO", "BCD", "NCDEX", "CRYPTO")
TUESDAY, THURSDAY = 1, 3


@dataclass(frozen=True)
class Underlying:
    name: str
    exchange: str  # where the spot is quoted (NSE_INDEX / BSE_INDEX / NSE)
    base_price: float
    annual_vol: float
    fo_exchange: str | None = None
    strike_step: int = 0
    lot_size: int = 1
    freeze_qty: int = 0
    weekly: bool = False
    expiry_weekday: int = TUESDAY
    token_base: int = 0
    tick: float = 0.05  # tick size of its derivatives
    expiry_day: int = 0  # futures expire on this day of the month (MCX); 0: the weekday rule

    @property
    def is_index(self) -> bool:
        return self.exchange.endswith("_INDEX")

    @property
    def is_commodity(self) -> bool:
        """Traded on MCX as futures only: its 'spot' is the model price the futures derive from."""
        return self.fo_exchange == "MCX"


# Lot and freeze sizes as OpenAlgo's reference snapshot lists them (they change over time:
# clients must read /symbol, never hard-code these).
UNDERLYINGS: dict[str, Underlying] = {
    u.name: u
    for u in (
        Underlying("NIFTY", "NSE_INDEX", 25900.0, 0.13, "NFO", 50, 65, 1800, True, TUESDAY, 35000),
        Underlying("BANKNIFTY", "NSE_INDEX", 58200.0, 0.15, "NFO", 100, 30, 600, False, TUESDAY, 45000),
        Underlying("SENSEX", "BSE_INDEX", 84600.0, 0.13, "BFO", 100, 20, 1000, True, THURSDAY, 55000),
        Underlying("RELIANCE", "NSE", 1480.0, 0.22, token_base=2885),
        Underlying("INFY", "NSE", 1540.0, 0.24, token_base=1594),
        Underlying("SBIN", "NSE", 965.0, 0.25, token_base=3045),
        Underlying("HDFCBANK", "NSE", 990.0, 0.20, token_base=1333),
        Underlying("TCS", "NSE", 3120.0, 0.21, token_base=11536),
        # MCX: lot in quoted units (CRUDEOIL 100 barrels, GOLDM 100 g = 10 × the 10 g quote,
        # NATURALGAS 1250 mmBtu); freeze = the exchange's largest single order, 100 lots.
        *(
            Underlying(name, "MCX", price, vol, "MCX", 0, lot, 100 * lot, token_base=tb, tick=tick, expiry_day=day)
            for name, price, vol, lot, tick, day, tb in (
                ("CRUDEOIL", 5450.0, 0.35, 100, 1.0, 19, 430000),
                ("CRUDEOILM", 5450.0, 0.35, 10, 1.0, 19, 432000),
                ("GOLDM", 128500.0, 0.15, 10, 1.0, 5, 434000),
                ("NATURALGAS", 395.0, 0.55, 1250, 0.1, 26, 436000),
            )
        ),
    )
}
COMMODITY_NAMES = tuple(n for n, u in UNDERLYINGS.items() if u.is_commodity)
INDEX_NAMES = tuple(n for n, u in UNDERLYINGS.items() if u.is_index)
STRIKES_EACH_SIDE = 100  # listed strikes around the reference price


@dataclass(frozen=True)
class Instrument:
    symbol: str
    exchange: str
    kind: str  # "index" | "equity" | "future" | "option"
    underlying: Underlying
    expiry: dt.date | None = None
    strike: float = 0.0
    option_type: str = ""  # "CE" | "PE"

    @property
    def lot_size(self) -> int:
        return self.underlying.lot_size if self.kind in ("future", "option") else 1

    @property
    def freeze_qty(self) -> int:
        return self.underlying.freeze_qty if self.kind in ("future", "option") else 0

    @property
    def tick_size(self) -> float:
        return self.underlying.tick if self.kind in ("future", "option") else 0.05

    @property
    def tradable(self) -> bool:
        return self.kind != "index"

    @property
    def token(self) -> str:
        return str(self.underlying.token_base + abs(hash_symbol(self.symbol)) % 100000)

    @property
    def instrumenttype(self) -> str:
        return {"index": "INDEX", "equity": "EQ", "future": "FUT"}.get(self.kind, self.option_type)


def hash_symbol(symbol: str) -> int:
    """A stable (PYTHONHASHSEED-independent) hash of a symbol."""
    h = 1469598103934665603
    for ch in symbol.encode():
        h = ((h ^ ch) * 1099511628211) & 0xFFFFFFFFFFFFFFFF
    return h


def fmt_strike(strike: float) -> str:
    return str(int(strike)) if float(strike).is_integer() else f"{strike:g}"


def option_symbol(name: str, expiry: dt.date, strike: float, option_type: str) -> str:
    return f"{name}{cal.fmt_ddmmmyy(expiry)}{fmt_strike(strike)}{option_type}"


def future_symbol(name: str, expiry: dt.date) -> str:
    return f"{name}{cal.fmt_ddmmmyy(expiry)}FUT"


_DERIV = re.compile(r"^([A-Z&]+?)(\d{2}[A-Z]{3}\d{2})(?:(FUT)|(\d+(?:\.\d+)?)(CE|PE))$")


@lru_cache(maxsize=256)
def option_expiries(u: Underlying, today: dt.date) -> tuple[dt.date, ...]:
    if u.is_commodity:
        return ()
    monthly = cal.monthly_expiries(today, u.expiry_weekday, 3)
    if not u.weekly:
        return tuple(monthly)
    return tuple(sorted(set(cal.weekly_expiries(today, u.expiry_weekday, 4)) | set(monthly)))


@lru_cache(maxsize=256)
def future_expiries(u: Underlying, today: dt.date) -> tuple[dt.date, ...]:
    if u.expiry_day:
        return tuple(cal.monthly_expiries_on_day(today, u.expiry_day, 3))
    return tuple(cal.monthly_expiries(today, u.expiry_weekday, 3))


@lru_cache(maxsize=32)
def listed_strikes(u: Underlying) -> tuple[float, ...]:
    centre = round(u.base_price / u.strike_step) * u.strike_step
    return tuple(float(centre + k * u.strike_step) for k in range(-STRIKES_EACH_SIDE, STRIKES_EACH_SIDE + 1))


def lookup(symbol: str, exchange: str, today: dt.date) -> Instrument | None:
    """Resolve an OpenAlgo symbol on an exchange to an instrument listed on `today`."""
    if not isinstance(symbol, str) or not isinstance(exchange, str):
        return None
    return _lookup(symbol, exchange, today)


@lru_cache(maxsize=65536)
def _lookup(symbol: str, exchange: str, today: dt.date) -> Instrument | None:
    u = UNDERLYINGS.get(symbol)
    if u is not None:
        if exchange == u.exchange and not u.is_commodity:
            return Instrument(symbol, exchange, "index" if u.is_index else "equity", u)
        return None
    m = _DERIV.match(symbol)
    if not m:
        return None
    u = UNDERLYINGS.get(m.group(1))
    if u is None or u.fo_exchange != exchange:
        return None
    expiry = cal.parse_ddmmmyy(m.group(2))
    if expiry is None:
        return None
    if m.group(3):
        if expiry not in future_expiries(u, today):
            return None
        return Instrument(symbol, exchange, "future", u, expiry)
    strike = float(m.group(4))
    if expiry not in option_expiries(u, today) or strike not in _strike_set(u):
        return None
    if fmt_strike(strike) != m.group(4):
        return None
    return Instrument(symbol, exchange, "option", u, expiry, strike, m.group(5))


@lru_cache(maxsize=32)
def _strike_set(u: Underlying) -> frozenset[float]:
    return frozenset(listed_strikes(u))


@lru_cache(maxsize=4)
def all_instruments(today: dt.date, mcx_today: dt.date | None = None) -> tuple[Instrument, ...]:
    """Every listed instrument (a few thousand), for /search. `mcx_today` is the listing day of
    MCX contracts (MCX trades on after the equity close), `today` by default."""
    out: list[Instrument] = []
    for u in UNDERLYINGS.values():
        if u.is_commodity:
            for exp in future_expiries(u, mcx_today or today):
                out.append(Instrument(future_symbol(u.name, exp), u.fo_exchange, "future", u, exp))
            continue
        out.append(Instrument(u.name, u.exchange, "index" if u.is_index else "equity", u))
        if u.fo_exchange is None:
            continue
        for exp in future_expiries(u, today):
            out.append(Instrument(future_symbol(u.name, exp), u.fo_exchange, "future", u, exp))
        for exp in option_expiries(u, today):
            for strike in listed_strikes(u):
                for ot in ("CE", "PE"):
                    out.append(
                        Instrument(option_symbol(u.name, exp, strike, ot), u.fo_exchange, "option", u, exp, strike, ot)
                    )
    return tuple(out)


def symbol_info(inst: Instrument, contracts: bool = False) -> dict:
    """The row shape of /symbol and /search. With `contracts`, quantities count lots (Zerodha's
    MCX): the lot size is 1 and the freeze quantity a number of lots."""
    u = inst.underlying
    lot, freeze = inst.lot_size, inst.freeze_qty
    if contracts and inst.kind in ("future", "option"):
        lot, freeze = 1, freeze // inst.lot_size
    if inst.kind == "option":
        brsymbol = f"{u.name} {cal.fmt_dd_mmm_yy(inst.expiry)} {fmt_strike(inst.strike)} {inst.option_type}"
    elif inst.kind == "future":
        brsymbol = f"{u.name} FUT {cal.fmt_dd_mmm_yy(inst.expiry)}"
    else:
        brsymbol = inst.symbol if inst.kind == "index" else f"{inst.symbol}-EQ"
    brexchange = {"NFO": "NSE_FO", "BFO": "BSE_FO"}.get(inst.exchange, inst.exchange)
    return {
        "id": int(inst.token),
        "name": u.name,
        "symbol": inst.symbol,
        "brsymbol": brsymbol,
        "exchange": inst.exchange,
        "brexchange": brexchange,
        "instrumenttype": inst.instrumenttype,
        "expiry": cal.fmt_dd_mmm_yy(inst.expiry) if inst.expiry else "",
        "strike": inst.strike if inst.kind == "option" else 0,
        "lotsize": lot,
        "tick_size": inst.tick_size,
        "freeze_qty": freeze if freeze else 1,
        "token": f"{brexchange}|{inst.token}",
    }
