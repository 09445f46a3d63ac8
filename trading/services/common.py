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
    symbol: str
    exchange: str
    action: str
    quantity: int
    pricetype: str = "MARKET"
    product: str = "MIS"
    price: Decimal = Decimal("0")
    trigger_price: Decimal = Decimal("0")
    reduce_only: bool = False


def grace() -> dt.timedelta:
    """How long after sending an outcome stays open: past the client timeout, nothing is in flight."""
    return dt.timedelta(seconds=settings.OPENALGO_TIMEOUT + settings.ORDER_UNKNOWN_GRACE)
