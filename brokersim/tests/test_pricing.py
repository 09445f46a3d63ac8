import math

import pytest

from brokersim import pricing


@pytest.mark.parametrize(
    ("fwd", "strike", "t", "vol", "ot", "r", "expected"),
    [
        # Black-76 values checked against statistics.NormalDist by hand (r = 0, undiscounted).
        (100.0, 100.0, 1.0, 0.2, "CE", 0.0, 7.9656),
        (100.0, 100.0, 1.0, 0.2, "PE", 0.0, 7.9656),
        (100.0, 110.0, 0.5, 0.25, "CE", 0.0, 3.4412),
        (100.0, 90.0, 0.5, 0.25, "PE", 0.0, 2.8412),
    ],
)
def test_black76_values(fwd, strike, t, vol, ot, r, expected):
    assert pricing.black76(fwd, strike, t, vol, ot, r) == pytest.approx(expected, abs=1e-3)


@pytest.mark.parametrize("strike", [80.0, 95.0, 100.0, 120.0])
def test_put_call_parity(strike):
    fwd, t, vol, r = 100.0, 0.3, 0.18, 0.065
    c = pricing.black76(fwd, strike, t, vol, "CE", r)
    p = pricing.black76(fwd, strike, t, vol, "PE", r)
    assert c - p == pytest.approx(math.exp(-r * t) * (fwd - strike), abs=1e-9)


def test_expired_option_is_intrinsic():
    assert pricing.black76(105, 100, 0, 0.2, "CE") == 5
    assert pricing.black76(105, 100, 0, 0.2, "PE") == 0


def test_smile_is_skewed_towards_puts_and_bounded():
    atm = 0.13
    assert pricing.smile_vol(atm, 100, 100, 0.02) == pytest.approx(atm)
    assert pricing.smile_vol(atm, 90, 100, 0.02) > pricing.smile_vol(atm, 110, 100, 0.02)
    assert 0.4 * atm <= pricing.smile_vol(atm, 10, 100, 0.02) <= 3 * atm


@pytest.mark.parametrize(("raw", "tick", "out"), [(101.149, 0.05, 101.15), (0.02, 0.05, 0.0), (99.98, 0.05, 100.0)])
def test_round_tick(raw, tick, out):
    assert pricing.round_tick(raw, tick) == out
