"""What every order service shares: the refusal, a leg, and how long an outcome stays open."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from decimal import Decimal

from django.conf import settings

from accounts.choices import AuditAction
from accounts.services import audit_record

from ..models import Order, OrderBatch
from ..selectors import group_id

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


@dataclass(frozen=True)
class Skipped:
    """An account left out of an order: on it the order would have opened or increased a position
    while it is halted or reducing only, and the trader asked to skip such accounts."""

    account_id: int
    account: str
    why: str

    def as_json(self) -> dict:
        return {"account_id": self.account_id, "account": self.account, "why": self.why}


@dataclass(frozen=True)
class Plan:
    """What an order request becomes once checked: the accounts it goes to, which (account pk,
    leg index) are written reduce-only, the accounts skipped with why, and each account's
    quantity for each leg in its own units (`orders_check`; empty before sizing)."""

    accounts: list
    exits: frozenset = frozenset()
    skipped: tuple[Skipped, ...] = ()
    quantities: dict = field(default_factory=dict)


def leg_text(action: str, quantity, symbol: str, exchange: str = "", *, lots: int = 0) -> str:
    size = f"{lots} lot(s) of" if lots and not quantity else quantity
    return f"{action} {size} {symbol}" + (f" {exchange}" if exchange else "")


def audit_order(action: str, order: Order, message: str, *, user=None, **details) -> None:
    """One audit row about one order: its account, its mirrored order (M-<batch>), and who: the
    `user` acting, else the batch's own user (a worker recording what happened to their order,
    marked "by": "system")."""
    if user is None and order.batch_id:
        batch = OrderBatch.objects.select_related("user").filter(pk=order.batch_id).first()
        user = batch.user if batch else None
        details.setdefault("by", "system")
    group = group_id(order.batch_id)
    what = leg_text(order.action, order.quantity, order.symbol, order.exchange)
    audit_record(
        action=action,
        user=user,
        account=order.account,
        group=group,
        message=f"{group or f'order {order.pk}'} · {what}: {message}",
        details={"order": order.pk, "batch": order.batch_id, **details},
    )


# An order's outcome, audited once per outcome (never per poll or fill): what its status now says.
OUTCOME_ACTIONS = {
    Status.ACCEPTED: AuditAction.ORDER_ACCEPTED,
    Status.REJECTED: AuditAction.ORDER_REJECTED,
    Status.UNKNOWN: AuditAction.ORDER_UNKNOWN,
}


def audit_outcome(order: Order) -> None:
    """The audit row for the outcome `order` was just moved to (accepted, rejected, unknown)."""
    action = OUTCOME_ACTIONS.get(order.status)
    if action is None:
        return
    if order.status == Status.ACCEPTED:
        text = f"accepted by the broker as {order.broker_orderid}"
    else:
        text = f"{order.get_status_display().lower()}: {order.last_error}"
    audit_order(action, order, text, outcome=order.status, attempt=order.attempts)


def grace() -> dt.timedelta:
    """How long after sending an outcome stays open: past the client timeout, nothing is in flight."""
    return dt.timedelta(seconds=settings.OPENALGO_TIMEOUT + settings.ORDER_UNKNOWN_GRACE)
