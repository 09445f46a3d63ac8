"""How many lots each account trades (pure: standard library, the calendar and the freeze split).

Values in, decisions out; nothing here reads the clock or the database: callers pass the day,
the funds figure, the tables (`strategies.reference`) and the calendar.

The formula (behaviour spec §6.3): budget = funds × grade %; lots = floor(budget / margin per
lot); margin used = lots × margin per lot. Margin per lot comes from `MarginRates` by trade
type (`sell_c_p` one CE or PE sold, `sell_c_and_p` a CE and a PE sold together, `futures`,
`buy` = the option-buying premium per lot) and the expiry flag.

A plan of several legs sizes each account once (§6.4, §4.7):
* per instrument, a SELL CE with a SELL PE is a straddle/strangle: one size from the pair
  margin, given to every SELL leg and to every BUY leg of a sold type (iron condor/fly wings);
* otherwise a BUY and a SELL of the same type is a vertical spread: one size from `sell_c_p`
  for all legs of that type;
* the rest are sized one by one: SELL options at `sell_c_p`, futures at `futures`, BUY options
  at the option-buying premium per lot. (The original sized a BUY beside a SELL of the other
  type at `sell_c_p`, ₹2.5 lakh a lot for a bought option; it hedges nothing there, so it is
  sized as the purchase it is. A lone BUY under a seller grade fell back to the leg's fixed
  lots; here it is sized from the budget like any other leg.)
Each size is taken from the account's budget, leg by leg, so later legs see what is left.

Fixed against the original:
* The budget is depleted, not the funds: the original subtracted each leg's margin from the
  funds and applied the grade % again to the remainder, so a two-leg plan at grade B could tie
  up 65 % + 65 % × 35 % ≈ 88 % of the account. Here every plan stays within grade × funds.
* The per-account multiplier (new) scales the sized lots and rounds DOWN to whole lots; a BUY
  hedge that rounds to 0 lots takes its SELL legs of the same instrument and type to 0 too
  (never a naked short from rounding).
* Expiry days come from the trading calendar with the exchange's holiday shift (an expiry on a
  holiday moves to the previous trading day); the original tested the weekday only, so a
  holiday counted as non-expiry but the shifted day did not count as expiry either.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field, replace
from decimal import ROUND_FLOOR, Decimal

from core import calendar as cal
from trading.freeze import split_quantity

from .reference import (
    BUY,
    FUTURES,
    SELL_C_AND_P,
    SELL_C_P,
    Grade,
    IndexSpec,
    MarginRates,
)

ZERO = Decimal(0)
OPTION, FUTURE = "option", "future"
EXPIRY, NON_EXPIRY, ANY = "expiry", "non_expiry", "any"


def _floor(x: Decimal) -> int:
    return int(x.to_integral_value(rounding=ROUND_FLOOR))


# ---- the formula, one trade type at a time (the margin calculator)


@dataclass(frozen=True)
class Sizing:
    """One application of the formula, with what the calculator page shows."""

    funds: Decimal
    percent: Decimal
    effective: Decimal  # funds × grade %
    per_lot: Decimal
    raw_lots: Decimal  # effective / per_lot, before flooring
    lots: int
    required: Decimal  # lots × per_lot
    remaining: Decimal  # effective − required

    @property
    def skipped(self) -> bool:
        return self.lots == 0

    @property
    def explanation(self) -> str:
        head = (
            f"₹{self.funds:,.0f} × {self.percent}% = ₹{self.effective:,.0f}; "
            f"₹{self.effective:,.0f} / ₹{self.per_lot:,.0f} per lot = {self.raw_lots:.2f} → {self.lots} lots"
        )
        return head + (" (insufficient margin: skipped)" if self.skipped else "")


def lots_for(*, funds: Decimal, grade: Grade, per_lot: Decimal) -> Sizing:
    """floor(funds × grade % / per_lot) whole lots. A negative figure sizes 0 lots."""
    per_lot = Decimal(per_lot)
    if per_lot <= 0:
        raise ValueError("margin per lot must be positive")
    funds = max(Decimal(funds), ZERO)
    effective = funds * grade.fraction
    raw = effective / per_lot
    lots = _floor(raw)
    required = lots * per_lot
    return Sizing(funds, Decimal(grade.percent), effective, per_lot, raw, lots, required, effective - required)


def calculate(
    *, funds: Decimal, grade: Grade, rates: MarginRates, trade_type: str, expiry_day: bool, lot_size: int
) -> tuple[Sizing, int]:
    """The margin calculator (§6.3): the sizing and the quantity (lots × lot size)."""
    s = lots_for(funds=funds, grade=grade, per_lot=rates.per_lot(trade_type, expiry_day=expiry_day))
    return s, s.lots * lot_size


# ---- expiry days from the trading calendar


def is_trading_day(day: dt.date, calendar: cal.Calendar) -> bool:
    """A day with a normal session in the calendar and no holiday. Special sessions (Muhurat)
    do not count: no contract expires in them. A calendar with no sessions (the demo
    'always open' one) trades Monday to Friday."""
    if day in calendar.holidays:
        return False
    normal = [s for s in calendar.sessions if s.kind == "normal"]
    if not normal:
        return day.weekday() < 5
    return any(s.weekday == day.weekday() for s in normal)


def _previous_trading_day(day: dt.date, calendar: cal.Calendar) -> dt.date | None:
    for back in range(15):
        d = day - dt.timedelta(days=back)
        if is_trading_day(d, calendar):
            return d
    return None


def _last_weekday_of_month(day: dt.date, weekday: int) -> dt.date:
    first_next = dt.date(day.year + (day.month == 12), day.month % 12 + 1, 1)
    last = first_next - dt.timedelta(days=1)
    return last - dt.timedelta(days=(last.weekday() - weekday) % 7)


def is_expiry_day(
    day: dt.date, spec: IndexSpec, calendar: cal.Calendar, listed: Collection[dt.date] | None = None
) -> bool:
    """Whether an index's options expire on `day`.

    With `listed` (the expiries the broker answered), membership decides. Otherwise the rule:
    the index's expiry weekday of that week (for a monthly-only index, of the month's last
    such week), moved back to the previous trading day when it is a holiday. So a holiday is
    never an expiry day and the trading day before it is. Pass the calendar of the index's own
    market (`spec.calendar_market`: BSE for SENSEX).
    """
    if listed is not None:
        return day in listed
    if not is_trading_day(day, calendar):
        return False
    nominal = day + dt.timedelta(days=(spec.expiry_weekday - day.weekday()) % 7)
    if not spec.weekly:
        nominal = _last_weekday_of_month(day, spec.expiry_weekday)
        if nominal < day:  # the month's expiry is behind us; the shift never moves it forward
            return False
    return _previous_trading_day(nominal, calendar) == day


def expiry_flag(
    condition: str,
    *,
    day: dt.date,
    spec: IndexSpec,
    calendar: cal.Calendar,
    listed: Collection[dt.date] | None = None,
) -> bool:
    """Which margin column a strategy uses: its market condition, or for `any` the calendar."""
    if condition == EXPIRY:
        return True
    if condition == NON_EXPIRY:
        return False
    if condition == ANY:
        return is_expiry_day(day, spec, calendar, listed)
    raise ValueError(f"market condition is expiry, non_expiry or any, not {condition!r}")


# ---- a whole plan for one account


@dataclass(frozen=True)
class Leg:
    """A leg as sizing sees it. `lot_size` and `freeze_quantity` are the contract's, resolved
    by the caller (`IndexSpec.lot_size_for`, or the broker's `symbol` answer)."""

    key: str | int
    instrument: str
    action: str  # "BUY" | "SELL"
    kind: str = OPTION  # "option" | "future"
    option_type: str = ""  # "CE" | "PE" for options
    lot_size: int = 1
    freeze_quantity: int = 0
    lots: int | None = None  # fixed-lots profile

    def __post_init__(self) -> None:
        if self.action not in ("BUY", "SELL"):
            raise ValueError(f"leg {self.key}: action is BUY or SELL")
        if self.kind not in (OPTION, FUTURE):
            raise ValueError(f"leg {self.key}: kind is option or future")
        if self.kind == OPTION and self.option_type not in ("CE", "PE"):
            raise ValueError(f"leg {self.key}: an option leg is CE or PE")
        if self.lot_size < 1:
            raise ValueError(f"leg {self.key}: lot size must be at least 1")


@dataclass(frozen=True)
class Budget:
    """grade × funds, and how much of it the legs sized so far have taken."""

    limit: Decimal
    spent: Decimal = ZERO

    @classmethod
    def of(cls, *, funds: Decimal, grade: Grade) -> Budget:
        return cls(max(Decimal(funds), ZERO) * grade.fraction)

    @property
    def left(self) -> Decimal:
        return self.limit - self.spent

    def take(self, per_lot: Decimal) -> tuple[int, Budget]:
        """As many whole lots as fit in what is left, and the budget after them."""
        if per_lot <= 0:
            raise ValueError("margin per lot must be positive")
        lots = max(_floor(self.left / per_lot), 0)
        return lots, replace(self, spent=self.spent + lots * per_lot)


@dataclass(frozen=True)
class LegSize:
    key: str | int
    sized_lots: int  # before the multiplier
    lots: int  # after it: what is traded
    quantity: int
    children: tuple[int, ...]  # the orders after the freeze split (empty when nothing is traded)
    basis: str  # how it was sized: "fixed", "straddle", "vertical", or the trade type
    per_lot: Decimal  # margin per lot of its basis (0 for fixed lots)
    margin: Decimal  # margin charged to this leg after the multiplier (a group's on its first leg)
    skip: str = ""  # why nothing is traded

    @property
    def skipped(self) -> bool:
        return self.lots == 0


@dataclass(frozen=True)
class AccountPlan:
    legs: tuple[LegSize, ...]
    multiplier: Decimal
    limit: Decimal | None  # grade × funds; None for fixed lots
    sized_margin: Decimal  # margin of the sized lots (before the multiplier), within `limit`
    margin: Decimal  # after the multiplier: what the account is estimated to tie up
    warnings: tuple[str, ...] = field(default=())

    def leg(self, key: str | int) -> LegSize:
        return next(s for s in self.legs if s.key == key)

    @property
    def over_limit(self) -> bool:
        """A multiplier above 1 can ask for more than the grade allows; the preview says so."""
        return self.limit is not None and self.margin > self.limit


@dataclass(frozen=True)
class _Group:
    keys: tuple[str | int, ...]
    basis: str
    per_lot: Decimal
    lots: int


def _groups(
    legs: Sequence[Leg],
    *,
    budget: Budget,
    margins: Mapping[str, MarginRates],
    expiry_day: Mapping[str, bool],
    held_shorts: Mapping[tuple[str, str], int],
) -> list[_Group]:
    """Split the legs into groups sized together, taking each group's margin from the budget in
    leg order (§6.4 first, then §4.7 one by one)."""
    groups: list[_Group] = []
    done: set[str | int] = set()

    def take(keys: list[str | int], basis: str, per_lot: Decimal) -> None:
        nonlocal budget
        lots, budget = budget.take(per_lot)
        groups.append(_Group(tuple(keys), basis, per_lot, lots))
        done.update(keys)

    def rates(instrument: str) -> MarginRates:
        try:
            return margins[instrument]
        except KeyError:
            raise ValueError(f"no margin rates for {instrument}") from None

    instruments = list(dict.fromkeys(leg.instrument for leg in legs))
    for name in instruments:
        options = [g for g in legs if g.instrument == name and g.kind == OPTION]
        if len(options) < 2:
            continue
        exp = expiry_day.get(name, False)
        sold = {g.option_type for g in options if g.action == "SELL"}
        if sold == {"CE", "PE"}:
            keys = [g.key for g in options if g.action == "SELL" or g.option_type in sold]
            take(keys, "straddle", rates(name).per_lot(SELL_C_AND_P, expiry_day=exp))
            continue
        for ot in ("CE", "PE"):
            same = [g for g in options if g.option_type == ot]
            if {g.action for g in same} == {"BUY", "SELL"}:
                take([g.key for g in same], "vertical", rates(name).per_lot(SELL_C_P, expiry_day=exp))

    for g in legs:
        if g.key in done:
            continue
        exp = expiry_day.get(g.instrument, False)
        if g.kind == FUTURE:
            take([g.key], FUTURES, rates(g.instrument).per_lot(FUTURES, expiry_day=exp))
        elif g.action == "SELL":
            take([g.key], SELL_C_P, rates(g.instrument).per_lot(SELL_C_P, expiry_day=exp))
        elif (g.instrument, g.option_type) in held_shorts:
            # An incremental hedge for a short this account already holds: the same size, and
            # its margin was taken when the short was sized.
            groups.append(_Group((g.key,), "hedge", ZERO, held_shorts[(g.instrument, g.option_type)]))
            done.add(g.key)
        else:
            take([g.key], BUY, rates(g.instrument).per_lot(BUY, expiry_day=exp))
    return groups


def _scaled(lots: int, multiplier: Decimal) -> int:
    return _floor(Decimal(lots) * multiplier)


def size_account(
    legs: Sequence[Leg],
    *,
    multiplier: Decimal = Decimal(1),
    grade: Grade | None = None,
    funds: Decimal | None = None,
    margins: Mapping[str, MarginRates] | None = None,
    expiry_day: Mapping[str, bool] | None = None,
    held_shorts: Mapping[tuple[str, str], int] | None = None,
) -> AccountPlan:
    """Lots, quantity and child orders of every leg for one account.

    Fixed lots when `grade` is None (each leg's `lots`); otherwise margin-based from `funds`
    (the grade source's figure, `reference.funds_figure`), `margins` per instrument and
    `expiry_day` per instrument (`expiry_flag`; one left out counts as non-expiry, whose selling
    margin is the higher one). `held_shorts` maps (instrument, CE|PE) to the
    lots of a short this account already holds, so an incremental BUY hedge matches it. Then
    the account's multiplier, rounded down, and the freeze split.
    """
    multiplier = Decimal(multiplier)
    if multiplier <= 0:
        raise ValueError("the multiplier must be positive")
    keys = [g.key for g in legs]
    if len(set(keys)) != len(keys):
        raise ValueError("leg keys must be unique")

    if grade is None:
        for g in legs:
            if g.lots is None or g.lots < 1:
                raise ValueError(f"leg {g.key}: fixed lots need a number of lots (1 or more)")
        groups = [_Group((g.key,), "fixed", ZERO, g.lots or 0) for g in legs]
        limit = None
    else:
        if funds is None or margins is None:
            raise ValueError("margin-based sizing needs the funds figure and the margin rates")
        budget = Budget.of(funds=funds, grade=grade)
        limit = budget.limit
        groups = _groups(
            legs,
            budget=budget,
            margins=margins,
            expiry_day=expiry_day or {},
            held_shorts=held_shorts or {},
        )

    by_key = {g.key: g for g in legs}
    group_of = {k: grp for grp in groups for k in grp.keys}
    final = {k: _scaled(group_of[k].lots, multiplier) for k in keys}
    skip = {k: ("insufficient margin" if group_of[k].lots == 0 else "") for k in keys}
    for k in keys:
        if not skip[k] and final[k] == 0:
            skip[k] = f"{group_of[k].lots} lots × {multiplier} rounds down to 0"

    warnings: list[str] = []
    for inst, ot in {(g.instrument, g.option_type) for g in legs if g.kind == OPTION}:
        same = [g for g in legs if g.instrument == inst and g.option_type == ot and g.kind == OPTION]
        buys = [g.key for g in same if g.action == "BUY"]
        sells = [g.key for g in same if g.action == "SELL"]
        hedged = buys and any(group_of[k].lots > 0 for k in buys)
        if hedged and sells and all(final[k] == 0 for k in buys) and any(final[k] > 0 for k in sells):
            for k in sells:
                final[k] = 0
                skip[k] = f"its {inst} {ot} hedge rounds down to 0 lots at ×{multiplier}: not sold naked"
            warnings.append(f"{inst} {ot}: short legs dropped, their hedge rounded to 0 lots")

    sized_margin = sum((grp.lots * grp.per_lot for grp in groups), ZERO)
    out: list[LegSize] = []
    charged: set[int] = set()
    for k in keys:
        g, grp = by_key[k], group_of[k]
        quantity = final[k] * g.lot_size
        margin = ZERO
        if id(grp) not in charged:
            charged.add(id(grp))
            margin = max((final[m] for m in grp.keys), default=0) * grp.per_lot
        children = tuple(split_quantity(quantity, g.lot_size, g.freeze_quantity)) if quantity else ()
        out.append(LegSize(k, grp.lots, final[k], quantity, children, grp.basis, grp.per_lot, margin, skip[k]))
    margin = sum((s.margin for s in out), ZERO)
    return AccountPlan(tuple(out), multiplier, limit, sized_margin, margin, tuple(warnings))


def leg_for(
    spec: IndexSpec,
    *,
    key: str | int,
    action: str,
    kind: str = OPTION,
    option_type: str = "",
    lots: int | None = None,
    expiry: dt.date | None = None,
    near_month_expiry: dt.date | None = None,
) -> Leg:
    """A `Leg` with the index's lot size (the next-month size past the near-month series) and
    freeze quantity from the reference table."""
    lot = spec.lot_size
    if expiry is not None and near_month_expiry is not None:
        lot = spec.lot_size_for(expiry, near_month_expiry)
    return Leg(key, spec.name, action, kind, option_type, lot, spec.freeze_quantity, lots)
