"""Sizing worked by hand (pure): the behaviour spec's examples as table rows (§6.3 a–e, §6.4,
§6.6), expiry days from the calendar, and the invariants as hypothesis properties."""

import datetime as dt
from decimal import Decimal as D

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core import calendar as cal
from strategies.reference import (
    AVAILABLE,
    BUY,
    CASH,
    FUTURES,
    GRADES,
    INDICES,
    MARGINS,
    SELL_C_AND_P,
    SELL_C_P,
    Grade,
    IndexSpec,
    MarginRates,
    funds_figure,
)
from strategies.sizing import (
    Budget,
    Leg,
    calculate,
    expiry_flag,
    is_expiry_day,
    leg_for,
    lots_for,
    size_account,
)

NIFTY, BANKNIFTY, SENSEX = INDICES["NIFTY"], INDICES["BANKNIFTY"], INDICES["SENSEX"]
A, B, C = GRADES["A"], GRADES["B"], GRADES["C"]
BUYER_95 = Grade("X", D(95), CASH)


def opt(key, action, ot, spec=NIFTY, lots=None):
    return leg_for(spec, key=key, action=action, option_type=ot, lots=lots)


# ---- §6.3: the calculator's worked examples


@pytest.mark.parametrize(
    ("row", "funds", "grade", "instrument", "trade_type", "expiry", "raw", "lots", "qty"),
    [
        ("§6.3 (a)", 1_000_000, B, "NIFTY", SELL_C_P, False, "2.6", 2, 130),
        ("§6.3 (b)", 1_000_000, B, "NIFTY", SELL_C_AND_P, False, "2.03125", 2, 130),
        ("§6.3 (c)", 1_000_000, B, "NIFTY", SELL_C_P, True, "3.17", 3, 195),
        ("§6.3 (d)", 100_000, BUYER_95, "NIFTY", BUY, False, "4.75", 4, 260),
        ("§6.3 (e)", 500_000, C, "SENSEX", FUTURES, False, "0.97", 0, 0),
    ],
)
def test_calculator_worked_examples(row, funds, grade, instrument, trade_type, expiry, raw, lots, qty):
    s, quantity = calculate(
        funds=D(funds),
        grade=grade,
        rates=MARGINS[instrument],
        trade_type=trade_type,
        expiry_day=expiry,
        lot_size=INDICES[instrument].lot_size,
    )
    assert (s.lots, quantity) == (lots, qty), row
    assert s.raw_lots.quantize(D(raw)) == D(raw), row
    assert s.required == lots * s.per_lot
    assert s.required <= s.effective
    assert s.skipped == (lots == 0)


def test_calculator_explains_a_skip():
    s, _ = calculate(
        funds=D(500_000), grade=C, rates=MARGINS["SENSEX"], trade_type=FUTURES, expiry_day=False, lot_size=20
    )
    assert s.effective == D(180_000) and s.per_lot == D(185_000)
    assert "insufficient margin" in s.explanation


@pytest.mark.parametrize(
    ("row", "funds", "grade", "legs", "expiry", "lots", "margin"),
    [
        # §6.3 (a)/(c) as one-leg plans
        ("§6.3 (a)", 1_000_000, B, [opt("s", "SELL", "CE")], False, {"s": 2}, 500_000),
        ("§6.3 (c)", 1_000_000, B, [opt("s", "SELL", "PE")], True, {"s": 3}, 615_000),
        # §6.3 (b): CE and PE sold together, sized once per pair-lot: 2 lots per leg
        (
            "§6.3 (b)",
            1_000_000,
            B,
            [opt("ce", "SELL", "CE"), opt("pe", "SELL", "PE")],
            False,
            {"ce": 2, "pe": 2},
            640_000,
        ),
        # §6.3 (d) as a plan: a lone BUY under a cash grade, at the premium per lot
        ("§6.3 (d)", 100_000, BUYER_95, [opt("b", "BUY", "CE")], False, {"b": 4}, 80_000),
        # §6.3 (e) as a plan: SENSEX futures, grade C → 0 lots, skipped
        ("§6.3 (e)", 500_000, C, [leg_for(SENSEX, key="f", action="BUY", kind="future")], False, {"f": 0}, 0),
        # §6.4 iron condor: wings copy the pair size, margin taken once (2 × 3,20,000)
        (
            "§6.4 iron condor",
            1_000_000,
            B,
            [opt("bce", "BUY", "CE"), opt("sce", "SELL", "CE"), opt("spe", "SELL", "PE"), opt("bpe", "BUY", "PE")],
            False,
            {"bce": 2, "sce": 2, "spe": 2, "bpe": 2},
            640_000,
        ),
        # §6.4 iron fly on expiry day: 6,50,000 / 2,50,000 = 2.6 → 2
        (
            "§6.4 iron fly, expiry",
            1_000_000,
            B,
            [opt("sce", "SELL", "CE"), opt("spe", "SELL", "PE"), opt("bce", "BUY", "CE"), opt("bpe", "BUY", "PE")],
            True,
            {"sce": 2, "spe": 2, "bce": 2, "bpe": 2},
            500_000,
        ),
        # §6.4 short strangle, grade A: 9,50,000 / 3,20,000 = 2.97 → 2
        (
            "§6.4 strangle, A",
            1_000_000,
            A,
            [opt("c", "SELL", "CE"), opt("p", "SELL", "PE")],
            False,
            {"c": 2, "p": 2},
            640_000,
        ),
        # §6.4 vertical (bull call spread): sell_c_p for both legs of the type
        (
            "§6.4 vertical",
            1_000_000,
            B,
            [opt("b", "BUY", "CE"), opt("s", "SELL", "CE")],
            False,
            {"b": 2, "s": 2},
            500_000,
        ),
        # §6.4 vertical on CE, lone PE buy from what is left: 1,50,000 / 20,000 = 7
        (
            "§6.4 vertical + lone buy",
            1_000_000,
            B,
            [opt("b", "BUY", "CE"), opt("s", "SELL", "CE"), opt("p", "BUY", "PE")],
            False,
            {"b": 2, "s": 2, "p": 7},
            640_000,
        ),
        # §6.4 insufficient margin: 1,95,000 < 3,20,000 → every leg 0
        (
            "§6.4 insufficient",
            300_000,
            B,
            [opt("bce", "BUY", "CE"), opt("sce", "SELL", "CE"), opt("spe", "SELL", "PE"), opt("bpe", "BUY", "PE")],
            False,
            {"bce": 0, "sce": 0, "spe": 0, "bpe": 0},
            0,
        ),
        # §4.7 depletion leg by leg: NIFTY straddle takes 6,40,000 of 6,50,000; BANKNIFTY gets 0
        (
            "§4.7 depleted",
            1_000_000,
            B,
            [
                opt("nc", "SELL", "CE"),
                opt("np", "SELL", "PE"),
                opt("bc", "SELL", "CE", BANKNIFTY),
                opt("bp", "SELL", "PE", BANKNIFTY),
            ],
            False,
            {"nc": 2, "np": 2, "bc": 0, "bp": 0},
            640_000,
        ),
        # the original re-applied the grade to the funds left: (10L − 5L) × 65 % / 2.5L = 1 more
        # lot, 7,50,000 in all at a 6,50,000 grade; the budget is depleted instead
        (
            "§4.7 fixed: grade × funds holds",
            1_000_000,
            B,
            [opt("n", "SELL", "CE"), opt("b", "SELL", "PE", BANKNIFTY)],
            False,
            {"n": 2, "b": 0},
            500_000,
        ),
    ],
)
def test_plans(row, funds, grade, legs, expiry, lots, margin):
    plan = size_account(legs, grade=grade, funds=D(funds), margins=MARGINS, expiry_day=dict.fromkeys(INDICES, expiry))
    assert {s.key: s.lots for s in plan.legs} == lots, row
    assert plan.margin == D(margin), row
    assert plan.margin <= plan.limit
    for s in plan.legs:
        assert s.quantity == s.lots * next(g.lot_size for g in legs if g.key == s.key)
        assert (s.skip == "insufficient margin") == (s.lots == 0), row


def test_seller_grade_uses_available_and_buyer_grade_cash():
    """§2.12/§2.13 sources, from a funds answer (OpenAlgo's example: 320.66 + 679.34 used)."""
    assert funds_figure(AVAILABLE, availablecash=D("320.66"), collateral=D("0")) == D("320.66")
    assert funds_figure(AVAILABLE, availablecash=D("100000"), collateral=D("50000")) == D("150000")
    assert funds_figure(CASH, availablecash=D("100000"), collateral=D("50000")) == D("100000")
    assert funds_figure(CASH, availablecash=D("-500")) == D("0")


@pytest.mark.parametrize(
    ("sized", "multiplier", "lots", "skip"),
    [
        (2, "0.5", 1, ""),
        (3, "0.5", 1, ""),  # 1.5 → 1, never 2
        (3, "1.5", 4, ""),  # 4.5 → 4
        (2, "2", 4, ""),
        (1, "0.5", 0, "rounds down to 0"),
        (7, "0.33", 2, ""),  # 2.31 → 2
    ],
)
def test_multiplier_after_sizing_rounds_down(sized, multiplier, lots, skip):
    plan = size_account([opt("s", "SELL", "CE", lots=sized)], multiplier=D(multiplier))
    s = plan.leg("s")
    assert (s.sized_lots, s.lots, s.quantity) == (sized, lots, lots * 65)
    assert skip in s.skip


def test_multiplier_on_a_margin_plan_scales_after_sizing_and_says_when_over_the_grade():
    legs = [opt("c", "SELL", "CE"), opt("p", "SELL", "PE")]
    plan = size_account(legs, multiplier=D(2), grade=B, funds=D(1_000_000), margins=MARGINS)
    assert [s.lots for s in plan.legs] == [4, 4]
    assert plan.sized_margin == D(640_000) <= plan.limit == D(650_000)
    assert plan.margin == D(1_280_000) and plan.over_limit


def test_a_hedge_rounded_to_zero_takes_its_shorts_with_it():
    """Ratio spread 1 BUY : 2 SELL at ×0.5 would be 0 : 1, a naked short: the short goes too."""
    legs = [opt("b", "BUY", "CE", lots=1), opt("s", "SELL", "CE", lots=2), opt("p", "SELL", "PE", lots=2)]
    plan = size_account(legs, multiplier=D("0.5"))
    assert [plan.leg(k).lots for k in "bsp"] == [0, 0, 1]
    assert "hedge" in plan.leg("s").skip
    assert plan.warnings


def test_incremental_hedge_matches_the_short_already_held():
    """§4.7 rule 2: a BUY added later for a SELL this account holds copies its size, no margin."""
    plan = size_account(
        [opt("b", "BUY", "PE")], grade=B, funds=D(10_000), margins=MARGINS, held_shorts={("NIFTY", "PE"): 3}
    )
    assert (plan.leg("b").lots, plan.margin) == (3, D(0))


def test_freeze_split_of_the_spec_example():
    """§6.6: NIFTY 30 lots × 65 = 1,950 > 1,755 → children of 1,755 and 195."""
    plan = size_account([opt("s", "SELL", "CE", lots=30)])
    assert plan.leg("s").children == (1755, 195)
    assert NIFTY.max_lots_per_order == 27


def test_next_month_lot_size_follows_the_contract_not_the_choice():
    """§4.7: next-month size for a contract past the near-month series, `next_week` included."""
    spec = IndexSpec("NIFTY", 65, 75, 1755, 50, 1, True, "NFO", "NSE_INDEX", "NSE")
    near = dt.date(2026, 12, 29)
    assert (
        leg_for(
            spec, key=1, action="BUY", option_type="CE", expiry=dt.date(2026, 12, 22), near_month_expiry=near
        ).lot_size
        == 65
    )
    assert leg_for(spec, key=1, action="BUY", option_type="CE", expiry=near, near_month_expiry=near).lot_size == 65
    assert (
        leg_for(
            spec, key=1, action="BUY", option_type="CE", expiry=dt.date(2027, 1, 5), near_month_expiry=near
        ).lot_size
        == 75
    )


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: Grade("Z", D(0)), "percentage"),
        (lambda: Grade("Z", D(101)), "percentage"),
        (lambda: Grade("Z", D(50), "margin"), "source"),
        (lambda: IndexSpec("X", 0, 1, 100, 50, 1, True, "NFO", "NSE_INDEX", "NSE"), "lot size"),
        (lambda: IndexSpec("X", 65, 65, 60_000, 50, 1, True, "NFO", "NSE_INDEX", "NSE"), "freeze"),
        (lambda: MarginRates(*[D(1)] * 6, D(0)), "positive"),
        (lambda: size_account([opt("s", "SELL", "CE")]), "fixed lots need"),
        (lambda: size_account([opt("s", "SELL", "CE", lots=1)], multiplier=D(0)), "multiplier"),
        (lambda: size_account([opt("s", "SELL", "CE")], grade=B, funds=D(1), margins={}), "no margin rates"),
        (lambda: expiry_flag("weekly", day=dt.date(2026, 3, 10), spec=NIFTY, calendar=cal.Calendar()), "condition"),
    ],
)
def test_bad_input_is_refused(make, message):
    with pytest.raises(ValueError, match=message):
        make()


# ---- expiry days from the calendar (§4.7 expiry flag, §6.3 auto-detection, §7.6 holidays)

WEEK = tuple(cal.Session(d, dt.time(9, 15), dt.time(15, 30)) for d in range(5))
NSE_2026 = cal.Calendar(WEEK, {dt.date(2026, 3, 3): "Holi", dt.date(2026, 3, 31): "Shri Mahavir Jayanti"})
BSE_2026 = cal.Calendar(WEEK, {dt.date(2026, 3, 26): "Shri Ram Navami"})


@pytest.mark.parametrize(
    ("spec", "calendar", "day", "expiry"),
    [
        (NIFTY, NSE_2026, dt.date(2026, 3, 10), True),  # a Tuesday
        (NIFTY, NSE_2026, dt.date(2026, 3, 9), False),  # Monday before a working Tuesday
        (NIFTY, NSE_2026, dt.date(2026, 3, 3), False),  # Tuesday, Holi: a holiday is no expiry day
        (NIFTY, NSE_2026, dt.date(2026, 3, 2), True),  # …the expiry moved to Monday
        (NIFTY, NSE_2026, dt.date(2026, 3, 7), False),  # Saturday
        (BANKNIFTY, NSE_2026, dt.date(2026, 3, 10), False),  # monthly only: an ordinary Tuesday
        (BANKNIFTY, NSE_2026, dt.date(2026, 2, 24), True),  # last Tuesday of February
        (BANKNIFTY, NSE_2026, dt.date(2026, 3, 31), False),  # last Tuesday of March, a holiday
        (BANKNIFTY, NSE_2026, dt.date(2026, 3, 30), True),  # …so Monday the 30th
        (SENSEX, BSE_2026, dt.date(2026, 3, 12), True),  # Thursday
        (SENSEX, BSE_2026, dt.date(2026, 3, 10), False),  # Tuesday is not SENSEX's day
        (SENSEX, BSE_2026, dt.date(2026, 3, 26), False),  # Thursday holiday on BSE
        (SENSEX, BSE_2026, dt.date(2026, 3, 25), True),  # …the Wednesday before
        (NIFTY, cal.Calendar(always_open=True), dt.date(2026, 3, 3), True),  # demo calendar: weekday only
    ],
)
def test_expiry_day_from_the_calendar(spec, calendar, day, expiry):
    assert is_expiry_day(day, spec, calendar) is expiry


def test_listed_expiries_decide_when_known():
    listed = {dt.date(2026, 3, 2), dt.date(2026, 3, 10)}
    assert is_expiry_day(dt.date(2026, 3, 2), NIFTY, NSE_2026, listed)
    assert not is_expiry_day(dt.date(2026, 3, 17), NIFTY, NSE_2026, listed)


@pytest.mark.parametrize(
    ("condition", "day", "flag"),
    [
        ("expiry", dt.date(2026, 3, 9), True),
        ("non_expiry", dt.date(2026, 3, 10), False),
        ("any", dt.date(2026, 3, 10), True),
        ("any", dt.date(2026, 3, 3), False),
    ],
)
def test_market_condition_picks_the_margin_column(condition, day, flag):
    assert expiry_flag(condition, day=day, spec=NIFTY, calendar=NSE_2026) is flag


# ---- properties

money = st.decimals(min_value=0, max_value=50_000_000, places=2, allow_nan=False, allow_infinity=False)
grades = st.builds(
    Grade,
    st.just("G"),
    st.decimals(min_value=D("0.01"), max_value=100, places=2),
    st.sampled_from([AVAILABLE, CASH]),
)
multipliers = st.decimals(min_value=D("0.01"), max_value=10, places=2)


@st.composite
def leg_lists(draw, fixed=False):
    n = draw(st.integers(1, 6))
    out = []
    for i in range(n):
        spec = draw(st.sampled_from(list(INDICES.values())))
        kind = draw(st.sampled_from(["option", "option", "future"]))
        out.append(
            Leg(
                i,
                spec.name,
                draw(st.sampled_from(["BUY", "SELL"])),
                kind,
                draw(st.sampled_from(["CE", "PE"])) if kind == "option" else "",
                draw(st.integers(1, 1000)),
                draw(st.integers(0, 50_000)),
                draw(st.integers(1, 100)) if fixed else None,
            )
        )
    return out


@settings(max_examples=300, deadline=None)
@given(legs=leg_lists(), funds=money, grade=grades, expiry=st.booleans())
def test_sized_margin_never_exceeds_grade_times_funds(legs, funds, grade, expiry):
    plan = size_account(legs, grade=grade, funds=funds, margins=MARGINS, expiry_day=dict.fromkeys(INDICES, expiry))
    assert plan.limit == funds * grade.percent / 100
    assert plan.sized_margin <= plan.limit
    assert plan.margin <= plan.limit  # multiplier 1


@settings(max_examples=300, deadline=None)
@given(legs=leg_lists(), funds=money, grade=grades, m=multipliers)
def test_a_multiplier_up_to_one_keeps_the_plan_within_the_grade(legs, funds, grade, m):
    plan = size_account(legs, multiplier=min(m, D(1)), grade=grade, funds=funds, margins=MARGINS)
    assert plan.margin <= plan.limit


@settings(max_examples=300, deadline=None)
@given(legs=leg_lists(fixed=True), m=multipliers)
def test_the_multiplier_never_rounds_up(legs, m):
    plan = size_account(legs, multiplier=m)
    for s in plan.legs:
        assert s.lots <= s.sized_lots * m
        assert s.lots == 0 or s.lots > s.sized_lots * m - 1  # down by less than a lot, or dropped


@settings(max_examples=300, deadline=None)
@given(legs=leg_lists(fixed=True), m=multipliers)
def test_freeze_children_sum_to_the_quantity(legs, m):
    plan = size_account(legs, multiplier=m)
    for s, g in zip(plan.legs, legs, strict=True):
        assert sum(s.children) == s.quantity
        assert all(c > 0 and c % g.lot_size == 0 for c in s.children)
        if g.freeze_quantity > 1 and g.freeze_quantity >= g.lot_size:  # 0 or 1: no limit known
            assert all(c <= g.freeze_quantity for c in s.children)


@settings(deadline=None)
@given(funds=money, grade=grades, per_lot=st.decimals(min_value=1, max_value=1_000_000, places=2))
def test_lots_for_is_the_floor(funds, grade, per_lot):
    s = lots_for(funds=funds, grade=grade, per_lot=per_lot)
    assert s.required <= s.effective < s.required + per_lot


@settings(deadline=None)
@given(limit=money, takes=st.lists(st.decimals(min_value=1, max_value=500_000, places=0), max_size=8))
def test_a_budget_taken_leg_by_leg_never_goes_negative(limit, takes):
    b = Budget(limit)
    for per_lot in takes:
        _, b = b.take(per_lot)
        assert D(0) <= b.left <= limit
