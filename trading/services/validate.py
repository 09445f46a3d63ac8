"""What the order form checks once, before anything is fanned out to the accounts: that the
instrument exists on the exchange it was asked for (one /symbol read, from one chosen account), its
lot and tick size, and whether a limit or stop price is far from the last traded price.

A wrong exchange or a misspelt symbol is the trader's mistake, not a broker's: told once, here,
instead of by every broker in turn after the orders went out."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING

from django.conf import settings
from django.core.cache import cache

from accounts import crypto
from accounts.services import account_client
from openalgo_client.rest import Reason, to_decimal

from .common import OrderRefused

if TYPE_CHECKING:
    from accounts.models import TradingAccount

# Where a symbol missing from one exchange is often found instead (an option typed on NSE).
OTHER_EXCHANGE = {"NSE": "NFO", "NFO": "NSE", "BSE": "BFO", "BFO": "BSE"}
# Answers that mean "no such instrument" (404 from /symbol; 400 "not found" from /quotes).
NOT_FOUND_REASONS = (Reason.NOT_FOUND, Reason.VALIDATION)
CACHE_SECONDS = 6 * 3600


class SymbolUnknown(OrderRefused):
    """The instrument does not exist on that exchange (as the checking account's broker says)."""


@dataclass(frozen=True)
class Instrument:
    symbol: str
    exchange: str
    lotsize: int
    tick_size: Decimal | None
    name: str
    instrumenttype: str
    checked_on: str  # the account whose broker answered

    def as_json(self) -> dict:
        return {
            "symbol": self.symbol,
            "exchange": self.exchange,
            "lotsize": self.lotsize,
            "tick_size": str(self.tick_size) if self.tick_size is not None else None,
            "name": self.name,
            "instrumenttype": self.instrumenttype,
            "checked_on": self.checked_on,
        }


def _checkers(accounts: list[TradingAccount]) -> list[TradingAccount]:
    """The chosen accounts in the order to ask them: connected ones first, fastest first."""
    return sorted(
        (a for a in accounts if a.is_active),
        key=lambda a: (not a.is_healthy, a.latency_ms if a.latency_ms is not None else 10**9, a.pk),
    )


def _symbol_read(account: TradingAccount, symbol: str, exchange: str) -> dict | None | bool:
    """One /symbol read: the instrument's row, None when the broker says it does not exist, or
    False when it could not be asked (down, unreadable key, an answer that proves nothing)."""
    server = crypto.normalised_host(account.host_url)
    key = f"symbolcheck:{server}:{exchange}:{symbol}"
    row = cache.get(key)
    if row is not None:
        return row
    try:
        res = account_client(account).call("symbol", symbol=symbol, exchange=exchange)
    except crypto.KeyUnreadable:
        return False
    if res.ok and isinstance(res.data, dict):
        cache.set(key, res.data, CACHE_SECONDS)
        return res.data
    if res.reason in NOT_FOUND_REASONS and "not found" in res.message.lower():
        return None
    return False


def instrument_check(*, accounts: list[TradingAccount], symbol: str, exchange: str) -> Instrument | None:
    """The instrument `symbol` on `exchange` as the first chosen account that answers knows it.
    Raises SymbolUnknown when that broker has no such instrument (naming the exchange it is on,
    when the usual other one has it). None when no chosen account could be asked: the orders
    then go out unchecked, and each broker judges them as before."""
    for account in _checkers(accounts):
        row = _symbol_read(account, symbol, exchange)
        if row is False:
            continue
        if row is None:
            raise SymbolUnknown(_not_found(account, symbol, exchange))
        return Instrument(
            symbol=str(row.get("symbol") or symbol),
            exchange=str(row.get("exchange") or exchange),
            lotsize=max(int(to_decimal(row.get("lotsize"), Decimal(1))), 1),
            tick_size=to_decimal(row.get("tick_size"), None),
            name=str(row.get("name") or ""),
            instrumenttype=str(row.get("instrumenttype") or ""),
            checked_on=account.name,
        )
    return None


def _not_found(account: TradingAccount, symbol: str, exchange: str) -> str:
    other = OTHER_EXCHANGE.get(exchange)
    if other and isinstance(_symbol_read(account, symbol, other), dict):
        return f"{symbol} is not on {exchange}, it trades on {other}: choose {other} as the exchange."
    return (
        f"{symbol} was not found on {exchange} ({account.name}'s broker has no such instrument): check the "
        "symbol (e.g. SBIN, or NIFTY30DEC2626000CE for an option) and the exchange. Nothing was sent."
    )


def last_price(*, accounts: list[TradingAccount], symbol: str, exchange: str) -> Decimal | None:
    """The last traded price from the first chosen account that quotes it (None: no quote)."""
    for account in _checkers(accounts):
        try:
            res = account_client(account).quotes(symbol=symbol, exchange=exchange)
        except crypto.KeyUnreadable:
            continue
        if res.ok and isinstance(res.data, dict):
            ltp = to_decimal(res.data.get("ltp"), None)
            if ltp is not None and ltp > 0:
                return ltp
    return None


def price_band_warnings(*, pricetype: str, price, trigger_price, ltp: Decimal | None) -> list[str]:
    """Sentences for a limit or trigger price more than ORDER_PRICE_BAND_PCT away from `ltp`
    (a typo like ₹99,999 for ₹812, or a stop on the wrong side by a digit). Empty: within the
    band, a market order, or no price to compare with."""
    if ltp is None or ltp <= 0:
        return []
    band = Decimal(str(settings.ORDER_PRICE_BAND_PCT))
    checks = []
    if pricetype in ("LIMIT", "SL") and price:
        checks.append(("limit price", Decimal(price)))
    if pricetype in ("SL", "SL-M") and trigger_price:
        checks.append(("trigger price", Decimal(trigger_price)))
    out = []
    for what, value in checks:
        off = (value - ltp) / ltp * 100
        if abs(off) > band:
            side = "above" if off > 0 else "below"
            out.append(
                f"The {what} ₹{value:,.2f} is {abs(off):,.0f}% {side} the last price ₹{ltp:,.2f} "
                f"(more than ±{band.normalize():f}%)."
            )
    return out
