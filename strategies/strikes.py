"""Which contract a leg trades: expiry choice, strike choice, the OpenAlgo symbol (pure:
standard library only).

Pure functions over what the caller already fetched from a broker (OpenAlgo `expiry` and
`optionchain` answers, parsed by `parse_expiries` / `chain_from_openalgo`); nothing here calls
a broker or reads the clock (the caller passes `today`). A choice that cannot be made raises
`SelectionError` with a sentence for the page: a preview shows the leg skipped with why; it
never silently trades a different contract.

Expiries (behaviour spec §4.5). A *monthly* expiry is the last listed expiry of its calendar
month (NSE's last Tuesday, BSE's last Thursday, holiday-shifted alike). An index has weeklies
when some listed expiry is not a monthly one (BANKNIFTY lists monthlies only):
* `current_week`: the first expiry; `next_week`: the second. Both need weeklies.
* `current_month`: the first monthly; `next_month`: the monthly after it.
* futures: `current_month` the first contract, `next_month` the second; no weekly choices.
Fixed against the original: `next_month` after a month's expiry day resolved to the same
contract as `current_month` (both took "the last expiry of next calendar month"); `next_week`
and `next_month` with only one listed expiry fell back to the first one (a different contract
from the one asked for); weekly choices on a monthly-only index quietly meant the monthly.

Strikes (§4.6), over the chain's listed strikes:
* ATM: the listed strike nearest the spot; on an exact midpoint the higher one (half-up).
  (The original used Python's `round`, banker's rounding: 24,325 → 24,300 but 24,375 →
  24,400.) With a regular chain this is round-half-up(spot / step) × step, `round_to_step`.
* ITMn / OTMn (n = 1–20): n listed strikes from ATM. A CE is in the money below the spot, a PE
  above it: CE ITMn and PE OTMn lie below ATM, CE OTMn and PE ITMn above. On a regular chain
  that is ATM ∓ n × step, as the original computed; counting listed strikes is also how
  OpenAlgo's `optionsymbol` and the chain's labels count.
* A specific strike: it must be listed (the original sent whatever was typed).
* Premium near a target: among ATM ± 20 listed strikes with a premium above 0, the smallest
  |premium − target|; a tie prefers the premium below the target (the original's rule), then
  the strike nearer ATM, then the lower strike. No premiums at all → an error (the original
  fell back to ATM, whose premium can be several times the target).
"""

from __future__ import annotations

import calendar as _stdcal
import datetime as dt
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

CURRENT_WEEK, NEXT_WEEK, CURRENT_MONTH, NEXT_MONTH = "current_week", "next_week", "current_month", "next_month"
EXPIRY_CHOICES = (CURRENT_WEEK, NEXT_WEEK, CURRENT_MONTH, NEXT_MONTH)
WEEKLY_CHOICES = (CURRENT_WEEK, NEXT_WEEK)
OPTIONS, FUTURES = "options", "futures"

ATM, ITM, OTM, STRIKE, PREMIUM_NEAR = "ATM", "ITM", "OTM", "strike_price", "premium_near"
MAX_OFFSET = 20
PREMIUM_WINDOW = 20  # listed strikes each side of ATM searched for premium-near


class SelectionError(ValueError):
    """The leg's contract cannot be chosen from what the broker listed."""


# ---- expiries

_MONTHS = {m.upper(): i for i, m in enumerate(_stdcal.month_abbr) if m}
_MONTHS |= {m.upper(): i for i, m in enumerate(_stdcal.month_name) if m}
_EXPIRY = re.compile(r"^(\d{1,2})-?([A-Z]{3,9})-?(\d{2}|\d{4})$")


def parse_expiry(text: str) -> dt.date:
    """`10-JUL-25`, `10JUL25`, `10-JULY-2025`, `10JUL2025` → a date."""
    m = _EXPIRY.match(str(text).strip().upper())
    if not m or m.group(2) not in _MONTHS:
        raise SelectionError(f"unreadable expiry {text!r}")
    year = int(m.group(3))
    try:
        return dt.date(year + 2000 if year < 100 else year, _MONTHS[m.group(2)], int(m.group(1)))
    except ValueError:
        raise SelectionError(f"unreadable expiry {text!r}") from None


def parse_expiries(texts: Iterable[str]) -> tuple[dt.date, ...]:
    """An `expiry` answer's `data` as sorted, distinct dates."""
    return tuple(sorted({parse_expiry(t) for t in texts}))


def fmt_expiry(day: dt.date) -> str:
    """`10JUL25`: the form inside symbols and in `expiry_date` fields."""
    return f"{day.day:02d}{_stdcal.month_abbr[day.month].upper()}{day.year % 100:02d}"


def monthlies(expiries: Iterable[dt.date]) -> tuple[dt.date, ...]:
    """The last listed expiry of each calendar month, in order."""
    last: dict[tuple[int, int], dt.date] = {}
    for d in sorted(expiries):
        last[(d.year, d.month)] = d
    return tuple(last.values())


def has_weeklies(expiries: Iterable[dt.date]) -> bool:
    listed = sorted(set(expiries))
    return len(listed) > len(monthlies(listed))


def expiry_choices(expiries: Iterable[dt.date], kind: str = OPTIONS) -> tuple[str, ...]:
    """The choices the builder offers for what the exchange lists: weekly ones only where there
    are weeklies (options), `next_*` only when a second contract exists."""
    listed = sorted(set(expiries))
    if kind == FUTURES:
        return (CURRENT_MONTH, NEXT_MONTH)[: min(len(listed), 2)]
    out = []
    if has_weeklies(listed):
        out += [CURRENT_WEEK, NEXT_WEEK][: min(len(listed), 2)]
    out += [CURRENT_MONTH, NEXT_MONTH][: min(len(monthlies(listed)), 2)]
    return tuple(out)


def select_expiry(
    expiries: Iterable[dt.date], choice: str, *, today: dt.date, kind: str = OPTIONS, name: str = ""
) -> dt.date:
    """The expiry a leg's choice means among the listed ones (expired ones ignored)."""
    if choice not in EXPIRY_CHOICES:
        raise SelectionError(f"unknown expiry choice {choice!r}")
    listed = sorted({d for d in expiries if d >= today})
    label = f"{name} {kind}".strip()
    if not listed:
        raise SelectionError(f"no {label} expiries listed")
    if kind == FUTURES:
        if choice in WEEKLY_CHOICES:
            raise SelectionError("futures have monthly contracts only: choose current or next month")
        series = listed
    elif choice in WEEKLY_CHOICES:
        if not has_weeklies(listed):
            raise SelectionError(f"{label} has no weekly expiries listed: choose current or next month")
        series = listed
    else:
        series = list(monthlies(listed))
    index = 0 if choice in (CURRENT_WEEK, CURRENT_MONTH) else 1
    if index >= len(series):
        raise SelectionError(f"{label}: no {choice.replace('_', ' ')} contract listed yet")
    return series[index]


# ---- strikes


@dataclass(frozen=True)
class Quote:
    symbol: str
    ltp: Decimal | None  # None: no price known (never taken as 0)


@dataclass(frozen=True)
class Chain:
    """An option chain: the spot, the listed strikes (ascending) and what is known per
    (strike, CE|PE)."""

    spot: Decimal
    strikes: tuple[Decimal, ...]
    quotes: Mapping[tuple[Decimal, str], Quote] = field(default_factory=dict)
    expiry: dt.date | None = None
    labels: Mapping[tuple[Decimal, str], str] = field(default_factory=dict)  # the broker's own

    def __post_init__(self) -> None:
        if list(self.strikes) != sorted(set(self.strikes)):
            raise ValueError("a chain's strikes are distinct and ascending")


@dataclass(frozen=True)
class StrikeChoice:
    strike: Decimal
    label: str  # "ATM", "ITM3", "OTM2"
    premium: Decimal | None = None
    warning: str = ""


def _dec(x: object) -> Decimal:
    try:
        return Decimal(str(x))
    except InvalidOperation:
        raise SelectionError(f"not a number: {x!r}") from None


def round_to_step(spot: Decimal, step: int | Decimal) -> Decimal:
    """round-half-up(spot / step) × step: 24,325 at step 50 → 24,350 (not banker's 24,300)."""
    step = _dec(step)
    if step <= 0:
        raise ValueError("strike step must be positive")
    return (_dec(spot) / step).quantize(Decimal(1), rounding=ROUND_HALF_UP) * step


def atm_index(spot: Decimal, strikes: Sequence[Decimal]) -> int:
    """The index of the listed strike nearest `spot`; the higher one on an exact midpoint."""
    if not strikes:
        raise SelectionError("no strikes listed")
    spot = _dec(spot)
    return min(range(len(strikes)), key=lambda i: (abs(strikes[i] - spot), -strikes[i]))


def label_of(index: int, atm: int, option_type: str) -> str:
    """The moneyness label of the strike at `index`: CE strikes below ATM are in the money."""
    n = (atm - index) if option_type == "CE" else (index - atm)
    return "ATM" if n == 0 else (f"ITM{n}" if n > 0 else f"OTM{-n}")


def _offset_index(atm: int, option_type: str, selection: str, n: int) -> int:
    """CE: ITM below ATM (lower index), OTM above; PE the other way round."""
    toward_lower = (selection == ITM) == (option_type == "CE")
    return atm - n if toward_lower else atm + n


def select_strike(
    chain: Chain,
    *,
    option_type: str,
    selection: str,
    offset: int = 0,
    strike: Decimal | None = None,
    target: Decimal | None = None,
    window: int = PREMIUM_WINDOW,
) -> StrikeChoice:
    """The strike a leg's selection means on `chain` (rules in the module docstring)."""
    if option_type not in ("CE", "PE"):
        raise SelectionError("option type is CE or PE")
    strikes = chain.strikes
    atm = atm_index(chain.spot, strikes)

    def choice(i: int) -> StrikeChoice:
        q = chain.quotes.get((strikes[i], option_type))
        return StrikeChoice(strikes[i], label_of(i, atm, option_type), q.ltp if q else None)

    if selection == ATM:
        return choice(atm)
    if selection in (ITM, OTM):
        if not 1 <= offset <= MAX_OFFSET:
            raise SelectionError(f"{selection} offset must be 1–{MAX_OFFSET}, not {offset}")
        i = _offset_index(atm, option_type, selection, offset)
        if not 0 <= i < len(strikes):
            raise SelectionError(f"{selection}{offset} {option_type} is beyond the listed strikes")
        return choice(i)
    if selection == STRIKE:
        if strike is None:
            raise SelectionError("a specific strike needs its value")
        wanted = _dec(strike)
        if wanted not in strikes:
            raise SelectionError(f"strike {wanted} is not listed for this expiry")
        return choice(strikes.index(wanted))
    if selection == PREMIUM_NEAR:
        return _premium_near(chain, atm, option_type, _dec(target) if target is not None else None, window)
    raise SelectionError(f"unknown strike selection {selection!r}")


def _premium_near(chain: Chain, atm: int, option_type: str, target: Decimal | None, window: int) -> StrikeChoice:
    if target is None or target <= 0:
        raise SelectionError("premium near needs a target premium above 0")
    strikes = chain.strikes
    candidates = []
    for i in range(max(atm - window, 0), min(atm + window + 1, len(strikes))):
        q = chain.quotes.get((strikes[i], option_type))
        if q is not None and q.ltp is not None and q.ltp > 0:
            # distance, then below-target first, then nearer ATM, then the lower strike
            candidates.append(((abs(q.ltp - target), q.ltp > target, abs(i - atm), strikes[i]), i, q.ltp))
    if not candidates:
        raise SelectionError(f"no {option_type} premiums known within {window} strikes of ATM")
    _, i, ltp = min(candidates)
    off = abs(ltp - target) / target
    limit = Decimal("0.20") if target < 50 else Decimal("0.15") if target < 100 else Decimal("0.10")
    warning = f"nearest premium {ltp} is {off:.0%} from the target {target}" if off > limit else ""
    return StrikeChoice(strikes[i], label_of(i, atm, option_type), ltp, warning)


def chain_from_openalgo(answer: Mapping) -> Chain:
    """A `Chain` from an OpenAlgo `optionchain` answer (rows of strike, `ce`, `pe`)."""
    quotes: dict[tuple[Decimal, str], Quote] = {}
    labels: dict[tuple[Decimal, str], str] = {}
    strikes = []
    for row in answer.get("chain") or ():
        k = _dec(row["strike"]).normalize()
        k = k.quantize(Decimal(1)) if k == k.to_integral_value() else k
        strikes.append(k)
        for ot in ("CE", "PE"):
            leg = row.get(ot.lower())
            if not leg:
                continue
            ltp = leg.get("ltp")
            quotes[(k, ot)] = Quote(str(leg.get("symbol", "")), _dec(ltp) if ltp not in (None, "") else None)
            if leg.get("label"):
                labels[(k, ot)] = str(leg["label"])
    expiry = answer.get("expiry_date")
    return Chain(
        _dec(answer["underlying_ltp"]),
        tuple(sorted(set(strikes))),
        quotes,
        parse_expiry(expiry) if expiry else None,
        labels,
    )


# ---- symbols and exchanges (§4.4)


def fmt_strike(strike: Decimal) -> str:
    s = _dec(strike)
    return str(s.quantize(Decimal(1))) if s == s.to_integral_value() else format(s.normalize(), "f")


def option_symbol(name: str, expiry: dt.date, strike: Decimal, option_type: str) -> str:
    """`NIFTY28MAR2420800CE`: OpenAlgo's broker-independent option symbol."""
    return f"{name}{fmt_expiry(expiry)}{fmt_strike(strike)}{option_type}"


def future_symbol(name: str, expiry: dt.date) -> str:
    """`NIFTY28MAR24FUT`."""
    return f"{name}{fmt_expiry(expiry)}FUT"
