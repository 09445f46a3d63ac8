"""The OpenAlgo REST v1 endpoints brokersim serves: each name, the schema its body must
satisfy and the handler that answers it. The gate runs every request's checks first."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from .. import schemas as sc
from . import account, books, marketdata, options, orders, symbols

if TYPE_CHECKING:
    from ..instance import Instance

# (instance, validated body, execution fault for the engine) -> 200 body; raise Reply otherwise.
Handler = Callable[["Instance", dict, "dict | None"], Any]

HANDLERS: dict[str, tuple[type[sc.Base] | None, Handler]] = {
    "ping": (sc.ApiKeyOnly, account.ping),
    "funds": (sc.ApiKeyOnly, account.funds),
    "orderbook": (sc.ApiKeyOnly, books.orderbook),
    "tradebook": (sc.ApiKeyOnly, books.tradebook),
    "positionbook": (sc.ApiKeyOnly, books.positionbook),
    "holdings": (sc.ApiKeyOnly, books.holdings),
    "openposition": (sc.OpenPosition, books.openposition),
    "orderstatus": (sc.OrderId, books.orderstatus),
    "placeorder": (sc.Order, orders.placeorder),
    "placesmartorder": (sc.SmartOrder, orders.placesmartorder),
    "splitorder": (sc.SplitOrder, orders.splitorder),
    "basketorder": (sc.BasketOrder, orders.basketorder),
    "optionsorder": (sc.OptionsOrder, options.optionsorder),
    "modifyorder": (sc.ModifyOrder, orders.modifyorder),
    "cancelorder": (sc.OrderId, orders.cancelorder),
    "cancelallorder": (sc.StrategyOnly, orders.cancelallorder),
    "closeposition": (sc.StrategyOnly, orders.closeposition),
    "quotes": (sc.SymbolExchange, marketdata.quotes),
    "multiquotes": (sc.MultiQuotes, marketdata.multiquotes),
    "depth": (sc.SymbolExchange, marketdata.depth),
    "history": (sc.History, marketdata.history),
    "intervals": (sc.ApiKeyOnly, marketdata.intervals),
    "expiry": (sc.Expiry, symbols.expiry),
    "optionsymbol": (sc.OptionSymbol, options.optionsymbol),
    "optionchain": (sc.OptionChain, options.optionchain),
    "symbol": (sc.SymbolExchange, symbols.symbol),
    "search": (sc.Search, symbols.search),
    "margin": (sc.Margin, account.margin),
}
