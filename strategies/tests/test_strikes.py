"""Expiry and strike selection (pure), table-driven from the behaviour spec §4.4–4.6, and once
against brokersim's real `expiry` and `optionchain` answers."""

import datetime as dt
from decimal import Decimal as D

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from strategies.reference import INDICES
from strategies.strikes import (
    ATM,
    CURRENT_MONTH,
    CURRENT_WEEK,
    FUTURES,
    ITM,
    NEXT_MONTH,
    NEXT_WEEK,
    OTM,
    PREMIUM_NEAR,
    STRIKE,
    Chain,
    Quote,
    SelectionError,
    atm_index,
    chain_from_openalgo,
    expiry_choices,
    fmt_expiry,
    future_symbol,
    option_symbol,
    parse_expiries,
    parse_expiry,
    round_to_step,
    select_expiry,
    select_strike,
)

d = dt.date

# ---- §4.5 expiries

# NIFTY options as listed on Monday 2 March 2026: Tuesday weeklies (Holi moves the 3rd to the
# 2nd), March's monthly moved off the 31st (a holiday) to the 30th, then April and May monthlies.
NIFTY_MAR = (
    d(2026, 3, 2),
    d(2026, 3, 10),
    d(2026, 3, 17),
    d(2026, 3, 24),
    d(2026, 3, 30),
    d(2026, 4, 28),
    d(2026, 5, 26),
)
BANKNIFTY_MAR = (d(2026, 3, 30), d(2026, 4, 28), d(2026, 5, 26))
# NIFTY on Wednesday 30 December 2026, the day after December's monthly expiry.
NIFTY_DEC = (d(2027, 1, 5), d(2027, 1, 12), d(2027, 1, 19), d(2027, 1, 26), d(2027, 2, 23), d(2027, 3, 30))
FUT_MAR = BANKNIFTY_MAR


@pytest.mark.parametrize(
    ("listed", "choice", "today", "kind", "expected"),
    [
        (NIFTY_MAR, CURRENT_WEEK, d(2026, 3, 2), "options", d(2026, 3, 2)),  # expiring today still counts
        (NIFTY_MAR, NEXT_WEEK, d(2026, 3, 2), "options", d(2026, 3, 10)),
        (NIFTY_MAR, CURRENT_MONTH, d(2026, 3, 2), "options", d(2026, 3, 30)),  # last listed in March
        (NIFTY_MAR, NEXT_MONTH, d(2026, 3, 2), "options", d(2026, 4, 28)),
        (NIFTY_MAR, CURRENT_WEEK, d(2026, 3, 3), "options", d(2026, 3, 10)),  # a stale list: past ones ignored
        (NIFTY_DEC, CURRENT_MONTH, d(2026, 12, 30), "options", d(2027, 1, 26)),
        # the original answered 26 Jan here too ("last expiry of next calendar month")
        (NIFTY_DEC, NEXT_MONTH, d(2026, 12, 30), "options", d(2027, 2, 23)),
        (BANKNIFTY_MAR, CURRENT_MONTH, d(2026, 3, 2), "options", d(2026, 3, 30)),
        (BANKNIFTY_MAR, NEXT_MONTH, d(2026, 3, 2), "options", d(2026, 4, 28)),
        (FUT_MAR, CURRENT_MONTH, d(2026, 3, 2), FUTURES, d(2026, 3, 30)),
        (FUT_MAR, NEXT_MONTH, d(2026, 3, 2), FUTURES, d(2026, 4, 28)),
    ],
)
def test_expiry_choice(listed, choice, today, kind, expected):
    assert select_expiry(listed, choice, today=today, kind=kind) == expected


@pytest.mark.parametrize(
    ("listed", "choice", "today", "kind", "message"),
    [
        (BANKNIFTY_MAR, CURRENT_WEEK, d(2026, 3, 2), "options", "no weekly expiries"),  # monthly only
        (BANKNIFTY_MAR, NEXT_WEEK, d(2026, 3, 2), "options", "no weekly expiries"),
        (FUT_MAR, CURRENT_WEEK, d(2026, 3, 2), FUTURES, "monthly contracts only"),
        ((d(2026, 3, 30),), NEXT_MONTH, d(2026, 3, 2), "options", "no next month"),  # the original took the first
        ((d(2026, 3, 30),), NEXT_MONTH, d(2026, 3, 2), FUTURES, "no next month"),
        (NIFTY_MAR, CURRENT_MONTH, d(2026, 6, 1), "options", "no .* expiries listed"),
        (NIFTY_MAR, "far_month", d(2026, 3, 2), "options", "unknown expiry choice"),
    ],
)
def test_expiry_choice_refused(listed, choice, today, kind, message):
    with pytest.raises(SelectionError, match=message):
        select_expiry(listed, choice, today=today, kind=kind)


@pytest.mark.parametrize(
    ("listed", "kind", "choices"),
    [
        (NIFTY_MAR, "options", (CURRENT_WEEK, NEXT_WEEK, CURRENT_MONTH, NEXT_MONTH)),
        (BANKNIFTY_MAR, "options", (CURRENT_MONTH, NEXT_MONTH)),  # weekly hidden
        (FUT_MAR, FUTURES, (CURRENT_MONTH, NEXT_MONTH)),
        ((d(2026, 3, 30),), "options", (CURRENT_MONTH,)),
    ],
)
def test_choices_offered(listed, kind, choices):
    assert expiry_choices(listed, kind) == choices


@pytest.mark.parametrize(
    ("text", "day"),
    [
        ("10-JUL-25", d(2025, 7, 10)),
        ("10JUL25", d(2025, 7, 10)),
        ("10-JULY-2025", d(2025, 7, 10)),
        ("02mar2026", d(2026, 3, 2)),
    ],
)
def test_expiry_formats(text, day):
    assert parse_expiry(text) == day
    assert fmt_expiry(day) == day.strftime("%d%b%y").upper()


def test_unreadable_expiry():
    with pytest.raises(SelectionError):
        parse_expiries(["31-FEB-26"])


def test_symbols():
    """§4.4: `<INSTRUMENT><DDMMMYY><STRIKE><CE|PE>` and `<INSTRUMENT><DDMMMYY>FUT`."""
    assert option_symbol("NIFTY", d(2024, 3, 28), D(20800), "CE") == "NIFTY28MAR2420800CE"
    assert option_symbol("NIFTY", d(2024, 3, 28), D("20800.0"), "PE") == "NIFTY28MAR2420800PE"
    assert option_symbol("CRUDEOIL", d(2026, 12, 18), D("5450.5"), "CE") == "CRUDEOIL18DEC265450.5CE"
    assert future_symbol("BANKNIFTY", d(2026, 3, 30)) == "BANKNIFTY30MAR26FUT"


# ---- §4.6 strikes

STEP = 50
STRIKES = tuple(D(k) for k in range(23_000, 25_701, STEP))


def chain(spot, quotes=None):
    return Chain(D(spot), STRIKES, {(D(k), ot): Quote(f"{k}{ot}", D(p)) for (k, ot), p in (quotes or {}).items()})


@pytest.mark.parametrize(
    ("spot", "option_type", "selection", "offset", "strike", "label"),
    [
        ("24337.40", "CE", ATM, 0, 24350, "ATM"),
        ("24337.40", "PE", ATM, 0, 24350, "ATM"),
        ("24337.40", "CE", ITM, 1, 24300, "ITM1"),  # a CE is in the money below the spot
        ("24337.40", "CE", OTM, 1, 24400, "OTM1"),
        ("24337.40", "PE", ITM, 1, 24400, "ITM1"),  # a PE above it
        ("24337.40", "PE", OTM, 1, 24300, "OTM1"),
        ("24337.40", "CE", ITM, 3, 24200, "ITM3"),
        ("24337.40", "PE", OTM, 3, 24200, "OTM3"),
        ("24337.40", "CE", OTM, 20, 25350, "OTM20"),
        ("24337.40", "PE", ITM, 20, 25350, "ITM20"),
        ("24337.40", "CE", ITM, 20, 23350, "ITM20"),
        ("24325", "CE", ATM, 0, 24350, "ATM"),  # exact midpoint: half-up (banker's gave 24,300)
        ("24375", "CE", ATM, 0, 24400, "ATM"),  # half-up agrees with banker's here
        ("24324.99", "CE", ATM, 0, 24300, "ATM"),
    ],
)
def test_strike_by_offset(spot, option_type, selection, offset, strike, label):
    got = select_strike(chain(spot), option_type=option_type, selection=selection, offset=offset)
    assert (got.strike, got.label) == (D(strike), label)


@pytest.mark.parametrize(
    ("spot", "step", "atm"),
    [
        ("24325", 50, 24350),
        ("24375", 50, 24400),
        ("24324.99", 50, 24300),
        ("58250", 100, 58300),
        ("84649.9", 100, 84600),
    ],
)
def test_round_to_step_is_half_up(spot, step, atm):
    assert round_to_step(D(spot), step) == D(atm)


def test_a_specific_strike_must_be_listed():
    got = select_strike(chain("24337.4"), option_type="PE", selection=STRIKE, strike=D(24500))
    assert (got.strike, got.label) == (D(24500), "ITM3")
    with pytest.raises(SelectionError, match="not listed"):
        select_strike(chain("24337.4"), option_type="PE", selection=STRIKE, strike=D(24525))


@pytest.mark.parametrize(
    ("offset", "selection", "message"),
    [(0, ITM, "1–20"), (21, OTM, "1–20"), (20, OTM, "beyond the listed")],
)
def test_offsets_refused(offset, selection, message):
    near_edge = chain("25500")  # OTM20 CE would be 26,500: not listed
    with pytest.raises(SelectionError, match=message):
        select_strike(near_edge, option_type="CE", selection=selection, offset=offset)


# premiums of CE strikes above a 24,337 spot (ATM 24,350)
CE_PREMIUMS = {24350: 130, 24400: 104, 24450: 81, 24500: 62, 24550: 46, 24600: 33, 24650: 23}


@pytest.mark.parametrize(
    ("quotes", "target", "strike", "warning"),
    [
        (CE_PREMIUMS, 50, 24550, False),  # |46 − 50| = 4 is the nearest
        (CE_PREMIUMS, 100, 24400, False),
        (CE_PREMIUMS, 300, 24350, True),  # 130 is 57 % away from 300: chosen, with a warning
        # a tie in distance (45 and 55 around 50) prefers the premium below the target
        ({24500: 55, 24550: 45}, 50, 24550, False),
        ({24500: 45, 24550: 55}, 50, 24500, False),
        # equal premiums: the strike nearer ATM, then the lower one
        ({24400: 50, 24500: 50}, 50, 24400, False),
        ({24300: 50, 24400: 50}, 50, 24300, False),
        # 0 means no trade, not a premium of zero; strikes beyond ATM ± 20 are not searched
        ({24400: 0, 24450: 80, 25400: 50}, 50, 24450, True),
    ],
)
def test_premium_near(quotes, target, strike, warning):
    c = chain("24337", {(k, "CE"): p for k, p in quotes.items()})
    got = select_strike(c, option_type="CE", selection=PREMIUM_NEAR, target=D(target))
    assert got.strike == D(strike)
    assert bool(got.warning) is warning


def test_premium_near_without_premiums_is_refused_not_atm():
    c = Chain(D("24337"), STRIKES, {(D(24400), "CE"): Quote("X", None)})
    with pytest.raises(SelectionError, match="no CE premiums"):
        select_strike(c, option_type="CE", selection=PREMIUM_NEAR, target=D(50))


@settings(deadline=None)
@given(
    base=st.integers(100, 1000),
    step=st.sampled_from([50, 100]),
    n=st.integers(2, 60),
    spot=st.decimals(min_value=0, max_value=200_000, places=2),
)
def test_atm_is_the_nearest_strike_half_up(base, step, n, spot):
    strikes = [D((base + i) * step) for i in range(n)]
    i = atm_index(spot, strikes)
    best = min(abs(k - spot) for k in strikes)
    assert abs(strikes[i] - spot) == best
    if sum(1 for k in strikes if abs(k - spot) == best) > 1:
        assert strikes[i] > spot  # an exact midpoint goes up
    if strikes[0] <= spot <= strikes[-1]:
        assert strikes[i] == round_to_step(spot, step)


# ---- live: brokersim's own answers


def _chain(b, name, exchange, expiry):
    answer = b.ok("optionchain", underlying=name, exchange=exchange, expiry_date=fmt_expiry(expiry), strike_count=25)
    return answer, chain_from_openalgo(answer)


@pytest.mark.parametrize(
    ("name", "spot", "weekly"),
    [("NIFTY", "25912.35", True), ("BANKNIFTY", "58161.8", False)],
)
def test_selection_against_brokersim(paper_clean, name, spot, weekly):
    """Expiries and strikes chosen from brokersim's `expiry` and `optionchain`: the broker's own
    ATM, its ITM/OTM labels on both sides and its `optionsymbol` resolution agree with ours."""
    b = paper_clean[0]
    spec = INDICES[name]
    b.sim("POST", "market", {"paused": True})
    try:
        b.sim("POST", "price", {"underlying": name, "ltp": float(spot)})
        listed = parse_expiries(b.ok("expiry", symbol=name, exchange="NFO", instrumenttype="options")["data"])
        today = listed[0]
        offered = expiry_choices(listed)
        assert (CURRENT_WEEK in offered) is weekly is spec.weekly
        if not weekly:
            with pytest.raises(SelectionError, match="no weekly"):
                select_expiry(listed, CURRENT_WEEK, today=today, name=name)
        futures = parse_expiries(b.ok("expiry", symbol=name, exchange="NFO", instrumenttype="futures")["data"])
        assert select_expiry(futures, CURRENT_MONTH, today=today, kind=FUTURES) == select_expiry(
            listed, CURRENT_MONTH, today=today
        )  # futures expire with the monthly options

        for choice in offered:
            expiry = select_expiry(listed, choice, today=today, name=name)
            answer, c = _chain(b, name, "NSE_INDEX", expiry)
            assert c.spot == D(spot) and c.expiry == expiry
            assert c.strikes[atm_index(c.spot, c.strikes)] == D(str(answer["atm_strike"]))
            for ot in ("CE", "PE"):
                for selection, offset in [(ATM, 0), (ITM, 1), (ITM, 3), (OTM, 1), (OTM, 20)]:
                    got = select_strike(c, option_type=ot, selection=selection, offset=offset)
                    assert got.label == (ATM if selection == ATM else f"{selection}{offset}")
                    assert got.label == c.labels[(got.strike, ot)]  # the broker's own label there
                    symbol = option_symbol(name, expiry, got.strike, ot)
                    assert symbol == c.quotes[(got.strike, ot)].symbol
                    resolved = b.ok(
                        "optionsymbol",
                        underlying=name,
                        exchange="NSE_INDEX",
                        expiry_date=fmt_expiry(expiry),
                        offset=got.label,
                        option_type=ot,
                    )
                    assert resolved["symbol"] == symbol
                    assert resolved["lotsize"] == spec.lot_size
            target = c.quotes[(c.strikes[atm_index(c.spot, c.strikes) + 4], "CE")].ltp
            near = select_strike(c, option_type="CE", selection=PREMIUM_NEAR, target=target)
            assert near.premium == target and near.label == "OTM4"
    finally:
        b.sim("POST", "reset", {"market": True})
