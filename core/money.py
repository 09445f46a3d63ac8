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
