"""Option pricing for the simulated market: Black-76 on the forward with a volatility smile.

Pure module. Units: prices in rupees, time in years (ACT/365), rates and vols as decimals.
"""

from __future__ import annotations

import math

RISK_FREE = 0.065
MIN_T = 1.0 / (365 * 24 * 60)  # one minute: keeps d1/d2 finite at expiry


def norm_cdf(x: float) -> float:
    return 0.5 * (1.0 + math.erf(x / math.sqrt(2.0)))


def norm_pdf(x: float) -> float:
    return math.exp(-0.5 * x * x) / math.sqrt(2.0 * math.pi)


def forward(spot: float, t: float, r: float = RISK_FREE) -> float:
    return spot * math.exp(r * max(t, 0.0))


def smile_vol(atm_vol: float, strike: float, fwd: float, t: float) -> float:
    """A skewed smile: puts (low strikes) richer than calls, wings up, flatter for long dates.

    iv = atm · (1 − 0.1·m + 0.25·m²) with m = ln(K/F)/√max(T, 2 days), kept within 0.4–3 × ATM.
    """
    m = math.log(strike / fwd) / math.sqrt(max(t, 2.0 / 365))
    return min(max(atm_vol * (1.0 - 0.1 * m + 0.25 * m * m), 0.4 * atm_vol), 3.0 * atm_vol)


def black76(fwd: float, strike: float, t: float, vol: float, option_type: str, r: float = RISK_FREE) -> float:
    """Discounted Black-76 price. At or past expiry, the intrinsic value."""
    if t <= 0:
        return max(fwd - strike, 0.0) if option_type == "CE" else max(strike - fwd, 0.0)
    t = max(t, MIN_T)
    sd = vol * math.sqrt(t)
    d1 = (math.log(fwd / strike) + 0.5 * sd * sd) / sd
    d2 = d1 - sd
    df = math.exp(-r * t)
    if option_type == "CE":
        return df * (fwd * norm_cdf(d1) - strike * norm_cdf(d2))
    return df * (strike * norm_cdf(-d2) - fwd * norm_cdf(-d1))


def greeks(fwd: float, strike: float, t: float, vol: float, option_type: str, r: float = RISK_FREE) -> dict:
    """Delta, gamma, theta (per calendar day) and vega (per 1 vol point) under Black-76."""
    t = max(t, MIN_T)
    sd = vol * math.sqrt(t)
    d1 = (math.log(fwd / strike) + 0.5 * sd * sd) / sd
    df = math.exp(-r * t)
    delta = df * norm_cdf(d1) if option_type == "CE" else -df * norm_cdf(-d1)
    gamma = df * norm_pdf(d1) / (fwd * sd)
    vega = df * fwd * norm_pdf(d1) * math.sqrt(t) / 100.0
    price = black76(fwd, strike, t, vol, option_type, r)
    theta = (-df * fwd * norm_pdf(d1) * vol / (2 * math.sqrt(t)) + r * price) / 365.0
    return {"delta": round(delta, 4), "gamma": round(gamma, 6), "theta": round(theta, 4), "vega": round(vega, 4)}


def round_tick(price: float, tick: float = 0.05) -> float:
    """Round to the exchange tick and to 2 decimals (no binary noise like 101.15000000000001)."""
    return round(round(price / tick) * tick, 2)
