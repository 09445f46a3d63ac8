"""Indian number formatting (pure): 12,34,567.89 grouping, and lakh/crore short forms."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal, InvalidOperation


def _dec(value) -> Decimal | None:
    try:
        d = Decimal(str(value))
    except (InvalidOperation, ValueError, TypeError):
        return None
    return d if d.is_finite() else None


def inr(value, places: int = 2) -> str:
    """1234567.891 → "12,34,567.89"; the last three digits, then groups of two."""
    d = _dec(value)
    if d is None:
        return "—"
    q = d.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP) if places else d.quantize(Decimal(1))
    sign = "-" if q < 0 else ""
    text = f"{abs(q):.{places}f}"
    whole, _, frac = text.partition(".")
    if len(whole) > 3:
        head, tail = whole[:-3], whole[-3:]
        groups = []
        while len(head) > 2:
            groups.insert(0, head[-2:])
            head = head[:-2]
        if head:
            groups.insert(0, head)
        whole = ",".join([*groups, tail])
    return f"{sign}{whole}.{frac}" if places else f"{sign}{whole}"


MINUS = "\u2212"  # a true minus sign: "−₹1,561.25" reads as one figure, "₹-1,561.25" does not


def rupees(value, places: int = 2) -> str:
    """-1561.25 → "−₹1,561.25", 1561.25 → "₹1,561.25", nothing → "—": a money figure with its
    symbol, signed before the symbol. Sums that round to zero show unsigned ("₹0.00")."""
    text = inr(value, places)
    if text == "—":
        return text
    return f"{MINUS}₹{text[1:]}" if text.startswith("-") else f"₹{text}"


def plain(value, places: int = 2) -> str:
    """A money cell for a CSV: "-1561.25" — always `places` decimals, rounded half away from zero
    as on screen, no grouping or symbol; "" when there is no number."""
    d = _dec(value)
    if d is None:
        return ""
    q = d.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP)
    return f"{q + 0:.{places}f}"  # + 0 turns -0.00 into 0.00


def inr_short(value) -> str:
    """1,25,00,000 → "1.25 Cr"; 4,50,000 → "4.50 L"; smaller amounts in full."""
    d = _dec(value)
    if d is None:
        return "—"
    a = abs(d)
    if a >= 10_000_000:
        return f"{d / 10_000_000:.2f} Cr"
    if a >= 100_000:
        return f"{d / 100_000:.2f} L"
    return inr(d)
