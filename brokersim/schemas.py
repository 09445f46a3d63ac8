"""Request schemas mirroring OpenAlgo's marshmallow schemas (unknown fields rejected,
numbers accepted as JSON numbers or numeric strings)."""

from __future__ import annotations

from marshmallow import RAISE, Schema, ValidationError, fields, validate

from .instruments import EXCHANGES, FNO_EXCHANGES

ACTIONS = validate.OneOf(["BUY", "SELL", "buy", "sell"])
PRICETYPES = validate.OneOf(["MARKET", "LIMIT", "SL", "SL-M"])
PRODUCTS = validate.OneOf(["MIS", "NRML", "CNC"])
EXCHANGE = validate.OneOf(list(EXCHANGES))
POSITIVE_QTY = validate.Range(min=0, min_inclusive=False, error="Quantity must be a positive number.")
NON_NEGATIVE = validate.Range(min=0)
INTERVALS = [
    "1s",
    "5s",
    "10s",
    "15s",
    "30s",
    "45s",
    "1m",
    "2m",
    "3m",
    "5m",
    "10m",
    "15m",
    "20m",
    "30m",
    "1h",
    "2h",
    "3h",
    "4h",
    "D",
    "W",
    "M",
    "Q",
    "Y",
]


def _apikey() -> fields.Str:
    return fields.Str(required=True, validate=validate.Length(min=1, max=256))


class Base(Schema):
    class Meta:
        unknown = RAISE


class ApiKeyOnly(Base):
    apikey = _apikey()


class StrategyOnly(Base):
    apikey = _apikey()
    strategy = fields.Str(required=True)


class Order(Base):
    apikey = _apikey()
    strategy = fields.Str(required=True)
    exchange = fields.Str(required=True, validate=EXCHANGE)
    symbol = fields.Str(required=True)
    action = fields.Str(required=True, validate=ACTIONS)
    quantity = fields.Float(required=True, validate=POSITIVE_QTY)
    pricetype = fields.Str(load_default="MARKET", validate=PRICETYPES)
    product = fields.Str(load_default="MIS", validate=PRODUCTS)
    price = fields.Float(load_default=0.0, validate=NON_NEGATIVE)
    trigger_price = fields.Float(load_default=0.0, validate=NON_NEGATIVE)
    disclosed_quantity = fields.Int(load_default=0, validate=NON_NEGATIVE)
    underlying_ltp = fields.Float(load_default=None, allow_none=True)


class SmartOrder(Order):
    quantity = fields.Float(required=True, validate=NON_NEGATIVE)
    position_size = fields.Float(required=True)
    underlying_ltp = None


class SplitOrder(Order):
    splitsize = fields.Int(required=True, validate=validate.Range(min=1))
    underlying_ltp = None


class BasketItem(Base):
    exchange = fields.Str(required=True, validate=EXCHANGE)
    symbol = fields.Str(required=True)
    action = fields.Str(required=True, validate=ACTIONS)
    quantity = fields.Float(required=True, validate=POSITIVE_QTY)
    pricetype = fields.Str(load_default="MARKET", validate=PRICETYPES)
    product = fields.Str(load_default="MIS", validate=PRODUCTS)
    price = fields.Float(load_default=0.0, validate=NON_NEGATIVE)
    trigger_price = fields.Float(load_default=0.0, validate=NON_NEGATIVE)
    disclosed_quantity = fields.Int(load_default=0, validate=NON_NEGATIVE)


class BasketOrder(Base):
    apikey = _apikey()
    strategy = fields.Str(required=True)
    orders = fields.List(fields.Nested(BasketItem), required=True)


class ModifyOrder(Base):
    apikey = _apikey()
    strategy = fields.Str(required=True)
    exchange = fields.Str(required=True, validate=EXCHANGE)
    symbol = fields.Str(required=True)
    orderid = fields.Str(required=True)
    action = fields.Str(required=True, validate=ACTIONS)
    product = fields.Str(required=True, validate=PRODUCTS)
    pricetype = fields.Str(required=True, validate=PRICETYPES)
    price = fields.Float(required=True, validate=NON_NEGATIVE)
    quantity = fields.Float(required=True, validate=POSITIVE_QTY)
    disclosed_quantity = fields.Int(required=True, validate=NON_NEGATIVE)
    trigger_price = fields.Float(required=True, validate=NON_NEGATIVE)


class OrderId(StrategyOnly):
    orderid = fields.Str(required=True)


class OpenPosition(StrategyOnly):
    symbol = fields.Str(required=True)
    exchange = fields.Str(required=True)
    product = fields.Str(required=True, validate=PRODUCTS)


class SymbolExchange(Base):
    apikey = _apikey()
    symbol = fields.Str(required=True)
    exchange = fields.Str(required=True, validate=EXCHANGE)


class MultiQuoteItem(Base):
    symbol = fields.Str(required=True)
    exchange = fields.Str(required=True)


class MultiQuotes(Base):
    apikey = _apikey()
    symbols = fields.List(fields.Nested(MultiQuoteItem), required=True, validate=validate.Length(min=1))


class History(Base):
    apikey = _apikey()
    symbol = fields.Str(required=True)
    exchange = fields.Str(required=True, validate=EXCHANGE)
    interval = fields.Str(required=True, validate=validate.OneOf(INTERVALS))
    start_date = fields.Date(required=True)
    end_date = fields.Date(required=True)
    source = fields.Str(load_default="api", validate=validate.OneOf(["api", "db"]))


class Expiry(Base):
    apikey = _apikey()
    symbol = fields.Str(required=True)
    exchange = fields.Str(required=True, validate=validate.OneOf(list(FNO_EXCHANGES)))
    instrumenttype = fields.Str(required=True, validate=validate.OneOf(["futures", "options"]))


class Search(Base):
    apikey = _apikey()
    query = fields.Str(required=True)
    exchange = fields.Str(load_default=None, validate=EXCHANGE)


class OptionSymbol(Base):
    apikey = _apikey()
    strategy = fields.Str(load_default=None)
    underlying = fields.Str(required=True)
    exchange = fields.Str(required=True, validate=EXCHANGE)
    expiry_date = fields.Str(load_default=None)
    strike_int = fields.Int(load_default=None, validate=validate.Range(min=1))
    offset = fields.Str(required=True)
    option_type = fields.Str(required=True, validate=validate.OneOf(["CE", "PE", "ce", "pe"]))


class OptionsOrder(Base):
    apikey = _apikey()
    strategy = fields.Str(required=True)
    underlying = fields.Str(required=True)
    exchange = fields.Str(required=True, validate=EXCHANGE)
    expiry_date = fields.Str(load_default=None)
    strike_int = fields.Int(load_default=None, validate=validate.Range(min=1))
    offset = fields.Str(required=True)
    option_type = fields.Str(required=True, validate=validate.OneOf(["CE", "PE", "ce", "pe"]))
    action = fields.Str(required=True, validate=ACTIONS)
    quantity = fields.Int(required=True, validate=validate.Range(min=1, error="Quantity must be a positive number."))
    splitsize = fields.Int(load_default=0, validate=NON_NEGATIVE)
    pricetype = fields.Str(load_default="MARKET", validate=PRICETYPES)
    product = fields.Str(load_default="MIS", validate=validate.OneOf(["MIS", "NRML"]))
    price = fields.Float(load_default=0.0, validate=NON_NEGATIVE)
    trigger_price = fields.Float(load_default=0.0, validate=NON_NEGATIVE)
    disclosed_quantity = fields.Int(load_default=0, validate=NON_NEGATIVE)


class OptionChain(Base):
    apikey = _apikey()
    underlying = fields.Str(required=True)
    exchange = fields.Str(required=True, validate=EXCHANGE)
    expiry_date = fields.Str(required=True)
    strike_count = fields.Int(load_default=None, validate=validate.Range(min=1, max=100))
    with_greeks = fields.Bool(load_default=False)
    interest_rate = fields.Float(load_default=None, validate=validate.Range(min=0, max=100))


class MarginPosition(Base):
    symbol = fields.Str(required=True, validate=validate.Length(min=1, max=50))
    exchange = fields.Str(required=True, validate=EXCHANGE)
    action = fields.Str(required=True, validate=ACTIONS)
    quantity = fields.Str(required=True)
    product = fields.Str(required=True, validate=PRODUCTS)
    pricetype = fields.Str(required=True, validate=PRICETYPES)
    price = fields.Str(load_default="0")
    trigger_price = fields.Str(load_default="0")


class Margin(Base):
    apikey = _apikey()
    positions = fields.List(fields.Nested(MarginPosition), required=True, validate=validate.Length(min=1, max=50))


__all__ = ["ValidationError"]
