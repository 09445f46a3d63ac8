"""Exchange freeze limits: an order above the freeze quantity must go out as several children
(pure: standard library only)."""

from __future__ import annotations


def split_quantity(quantity: int, lot: int, freeze: int) -> list[int]:
    """Children no larger than the freeze quantity, each a whole number of lots.

    `quantity`, `lot` and `freeze` are in units (shares or contracts). A freeze of 0 or 1 means
    "no limit known" and the order stays whole; so does one at or under the limit. The last child
    carries the remainder, which is a whole number of lots when `quantity` is.
    """
    if freeze <= 1 or quantity <= freeze:
        return [quantity]
    step = max(freeze // lot, 1) * lot
    out = [step] * (quantity // step)
    if quantity % step:
        out.append(quantity % step)
    return out
