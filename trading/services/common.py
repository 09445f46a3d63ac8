"""What every order service shares: the refusal, a leg, and how long an outcome stays open."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal

from django.conf import settings

from ..models import Order

Status = Order.Status
MAX_ATTEMPTS = 3
LIVE = [Status.ACCEPTED, Status.OPEN]


class OrderRefused(Exception):
    """The request is refused before anything is written (bad input, halted account)."""


@dataclass(frozen=True)
class Leg:
    """One instrument of an order, sized either in units (`quantity`: shares, or what the
    account's broker counts for a derivative) or in `lots`. Lots are the portable size: the same
    lots become each account's own quantity from that account's lot size, since brokers count
    differently (Zerodha counts MCX in contracts, others in units: CRUDEOIL 1 vs 100)."""

    symbol: str
    exchange: str
    action: str
    quantity: int = 0
    pricetype: str = "MARKET"
    product: str = "MIS"
    price: Decimal = Decimal("0")
    trigger_price: Decimal = Decimal("0")
    reduce_only: bool = False
    lots: int = 0

    def quantity_for(self, lot_size: int) -> int:
        """This leg's quantity on an account whose lot size is `lot_size`."""
        return self.lots * lot_size if self.lots else self.quantity


def grace() -> dt.timedelta:
    """How long after sending an outcome stays open: past the client timeout, nothing is in flight."""
    return dt.timedelta(seconds=settings.OPENALGO_TIMEOUT + settings.ORDER_UNKNOWN_GRACE)
