"""Reference values for sizing: index contract facts, margin per lot, margin grades (pure:
standard library only).

Seeded from the original's values as shipped (behaviour spec §2.10–2.12, §6.7); every table is
a plain mapping that callers replace with the user's edited settings (the settings pages load
rows and build these values; a reset-to-defaults writes the seeds back). The stale copies the
original kept elsewhere (NIFTY 75, BANKNIFTY 35, freeze 1800 …, §6.7) are not repeated here: this
module is the one place the seeds live. Lot and freeze sizes change over time; where a broker's
`symbol` answer carries `lotsize` / `freeze_qty`, prefer it to the seed.

Money is Decimal rupees; quantities are integer units (shares or contracts); percentages are
Decimal percent (65 means 65 %).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from types import MappingProxyType

MONDAY, TUESDAY, WEDNESDAY, THURSDAY, FRIDAY = range(5)

# Validation bounds the original's settings form applied (§2.10); kept so a typo cannot size 10⁶ lots.
LOT_SIZE_RANGE = (1, 1000)
FREEZE_RANGE = (1, 50_000)

AVAILABLE, CASH = "available", "cash"
SELL_C_P, SELL_C_AND_P, FUTURES, BUY = "sell_c_p", "sell_c_and_p", "futures", "buy"
TRADE_TYPES = (SELL_C_P, SELL_C_AND_P, FUTURES, BUY)


@dataclass(frozen=True)
class IndexSpec:
    """One index's derivatives: lot sizes (near-month series and the series after it), the
    exchange freeze quantity (the largest single order), strike step, expiry weekday, and
    whether the exchange lists weekly options at all (BANKNIFTY: monthly only since 2024)."""

    name: str
    lot_size: int
    next_month_lot_size: int
    freeze_quantity: int
    strike_step: int
    expiry_weekday: int  # 0 = Monday
    weekly: bool
    exchange: str  # where its options and futures trade
    index_exchange: str  # where the spot is quoted
    calendar_market: str  # whose holidays decide its expiry days

    def __post_init__(self) -> None:
        for label, value, (lo, hi) in (
            ("lot size", self.lot_size, LOT_SIZE_RANGE),
            ("next month lot size", self.next_month_lot_size, LOT_SIZE_RANGE),
            ("freeze quantity", self.freeze_quantity, FREEZE_RANGE),
        ):
            if not lo <= value <= hi:
                raise ValueError(f"{self.name}: {label} must be {lo}–{hi:,}, not {value}")
        if self.strike_step <= 0:
            raise ValueError(f"{self.name}: strike step must be positive")

    @property
    def max_lots_per_order(self) -> int:
        """Shown beside the freeze quantity (freeze // lot, at least 1); the split enforces it."""
        return max(self.freeze_quantity // self.lot_size, 1)

    def lot_size_for(self, expiry: dt.date, near_month_expiry: dt.date) -> int:
        """The lot size of a contract expiring on `expiry`, given the near-month series' expiry
        (the `current_month` choice). A contract after the near-month series takes the
        next-month size. The original switched only for the `next_month` choice, so a
        `next_week` contract that falls in the following series got the old size."""
        return self.next_month_lot_size if expiry > near_month_expiry else self.lot_size


@dataclass(frozen=True)
class MarginRates:
    """Margin per lot in rupees by trade type × expiry flag (§2.11), and the premium budgeted
    per lot when buying options."""

    sell_c_p_expiry: Decimal  # one CE or one PE sold
    sell_c_p_non_expiry: Decimal
    sell_c_and_p_expiry: Decimal  # a CE and a PE sold together (straddle/strangle), per pair-lot
    sell_c_and_p_non_expiry: Decimal
    futures_expiry: Decimal
    futures_non_expiry: Decimal
    option_buying_premium: Decimal

    def __post_init__(self) -> None:
        for name in self.__dataclass_fields__:
            if Decimal(getattr(self, name)) <= 0:
                raise ValueError(f"margin per lot ({name}) must be positive")

    def per_lot(self, trade_type: str, *, expiry_day: bool) -> Decimal:
        """Rupees one lot of `trade_type` ties up. Buying an option ties up its premium: the
        option-buying premium per lot, whatever the grade's source (the original's calculator
        answered 0 for a buy under a seller grade and so 0 lots, its executor fell back to the
        leg's fixed lots; either way the account's size was ignored)."""
        if trade_type == BUY:
            return Decimal(self.option_buying_premium)
        if trade_type not in TRADE_TYPES:
            raise ValueError(f"unknown trade type {trade_type!r}")
        return Decimal(getattr(self, f"{trade_type}_{'expiry' if expiry_day else 'non_expiry'}"))


@dataclass(frozen=True)
class Grade:
    """A margin grade: the share of the account's funds a margin-sized plan may use, and which
    funds figure it reads (`available` for sellers and hedgers, `cash` for option buyers)."""

    name: str
    percent: Decimal
    source: str = AVAILABLE
    risk_level: str = ""

    def __post_init__(self) -> None:
        if not Decimal(0) < Decimal(self.percent) <= Decimal(100):
            raise ValueError(f"grade {self.name}: percentage must be above 0 and at most 100")
        if self.source not in (AVAILABLE, CASH):
            raise ValueError(f"grade {self.name}: source is 'available' or 'cash'")

    @property
    def fraction(self) -> Decimal:
        return Decimal(self.percent) / 100


def _ro(d: dict) -> Mapping:
    return MappingProxyType(d)


INDICES: Mapping[str, IndexSpec] = _ro(
    {
        "NIFTY": IndexSpec("NIFTY", 65, 65, 1755, 50, TUESDAY, True, "NFO", "NSE_INDEX", "NSE"),
        "BANKNIFTY": IndexSpec("BANKNIFTY", 30, 30, 600, 100, TUESDAY, False, "NFO", "NSE_INDEX", "NSE"),
        "SENSEX": IndexSpec("SENSEX", 20, 20, 1000, 100, THURSDAY, True, "BFO", "BSE_INDEX", "BSE"),
    }
)


def _rates(*values: int) -> MarginRates:
    return MarginRates(*(Decimal(v) for v in values))


MARGINS: Mapping[str, MarginRates] = _ro(
    {
        "NIFTY": _rates(205_000, 250_000, 250_000, 320_000, 215_000, 215_000, 20_000),
        "BANKNIFTY": _rates(205_000, 250_000, 250_000, 320_000, 215_000, 215_000, 20_000),
        "SENSEX": _rates(180_000, 220_000, 225_000, 290_000, 185_000, 185_000, 20_000),
    }
)

# The original's seeds (§2.12), with its A/C mislabel repaired: A is the aggressive grade.
GRADES: Mapping[str, Grade] = _ro(
    {
        "A": Grade("A", Decimal(95), AVAILABLE, "aggressive"),
        "B": Grade("B", Decimal(65), AVAILABLE, "moderate"),
        "C": Grade("C", Decimal(36), AVAILABLE, "conservative"),
    }
)
# Grades a user cannot delete (custom grades can be).
BUILT_IN_GRADES = ("A", "B", "C")


def funds_figure(source: str, *, availablecash: Decimal, collateral: Decimal = Decimal(0)) -> Decimal:
    """The rupees a grade's percentage applies to, from an OpenAlgo `funds` answer.

    `available` (sellers, hedgers): cash plus pledged collateral, both of which brokers accept
    as margin. `cash` (option buyers): cash only, since premium is paid in cash. OpenAlgo's
    `availablecash` is already net of margin in use (its example: 320.66 available + 679.34
    utilised = 1,000); the original subtracted `utiliseddebits` once more and so counted used
    margin twice. A negative figure (a debit balance) is no budget, not a negative one.
    """
    if source not in (AVAILABLE, CASH):
        raise ValueError("source is 'available' or 'cash'")
    figure = Decimal(availablecash) + (Decimal(collateral) if source == AVAILABLE else 0)
    return max(figure, Decimal(0))
