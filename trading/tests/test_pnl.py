"""P&L worked by hand (pure): partial exits, reversals, lot sizes, shorts, and totals that add up."""

import random
from decimal import Decimal as D

import pytest

from trading.pnl import Fill, PnL, Position, apply_fill, pnl, replay, total


def B(q, p):
    return Fill("BUY", q, D(p))


def S(q, p):
    return Fill("SELL", q, D(p))


@pytest.mark.parametrize(
    ("fills", "qty", "avg", "realized"),
    [
        # NIFTY option, lot 65: buy 2 lots @120, sell 1 lot @150 → +30×65 = 1950 booked
        ([B(130, "120"), S(65, "150")], 65, "120", "1950"),
        # averaging in: 65 @100 + 65 @110 → 130 @105
        ([B(65, "100"), B(65, "110")], 130, "105", "0"),
        # short 3 lots of BANKNIFTY (lot 30) @250, cover 1 lot @200 → +50×30 = 1500
        ([S(90, "250"), B(30, "200")], -60, "250", "1500"),
        # reversal: long 65 @100, sell 130 @90 → −10×65 booked, short 65 @90
        ([B(65, "100"), S(130, "90")], -65, "90", "-650"),
        # round trip to flat twice: +5×20 then −2×20 (SENSEX lot 20)
        ([B(20, "300"), S(20, "305"), S(20, "310"), B(20, "312")], 0, "0", "60"),
        # fractional prices stay exact in Decimal
        ([B(65, "101.05"), S(65, "101.10")], 0, "0", "3.25"),
    ],
)
def test_positions_from_fills(fills, qty, avg, realized):
    pos = replay(fills)
    assert (pos.quantity, pos.average_price, pos.realized) == (qty, D(avg), D(realized))


@pytest.mark.parametrize(
    ("pos", "ltp", "unrealized"),
    [
        (Position(65, D("120")), D("130"), D("650")),
        (Position(-90, D("250")), D("260"), D("-900")),  # short loses when the price rises
        (Position(0, D("0"), D("100")), None, D("0")),  # flat: no price needed
    ],
)
def test_unrealized(pos, ltp, unrealized):
    assert pnl(pos, ltp).unrealized == unrealized


def test_no_price_means_unknown_not_zero():
    assert pnl(Position(65, D("120")), None) is None


def test_bad_fill_is_refused():
    with pytest.raises(ValueError, match="positive quantity"):
        apply_fill(Position(), Fill("BUY", 0, D("1")))


def test_per_account_figures_add_up_to_the_total():
    """Property: for random fills on random accounts, the total is the sum of the parts, and the
    realised P&L equals cash in minus cash out once every position is flat."""
    rng = random.Random(7)
    for _ in range(200):
        per_account = []
        for _account in range(rng.randint(1, 5)):
            fills, qty = [], 0
            for _ in range(rng.randint(1, 12)):
                q = rng.choice([20, 30, 65]) * rng.randint(1, 3)
                side = rng.choice(["BUY", "SELL"])
                fills.append(Fill(side, q, D(rng.randint(100, 20000)) / 100))
                qty += q if side == "BUY" else -q
            if qty:
                fills.append(Fill("SELL" if qty > 0 else "BUY", abs(qty), D(rng.randint(100, 20000)) / 100))
            pos = replay(fills)
            assert pos.quantity == 0
            cash = sum((-f.price * f.signed for f in fills), D(0))
            # Averages carry 28 significant digits; to the paisa, realised P&L is the cash flow.
            assert pos.realized.quantize(D("0.01")) == cash
            per_account.append(pnl(pos, D("150")))
        t = total(per_account)
        assert t == PnL(sum((p.realized for p in per_account), D(0)), D(0), sum((p.total for p in per_account), D(0)))
