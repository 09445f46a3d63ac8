"""Browser contract for order progress (one group per batch) and fills (the owner's pages)."""

from __future__ import annotations

from accounts import events as account_events
from core.realtime import broadcast

from .selectors import order_row

ORDER_UPDATED = "order.updated"
POSITION_UPDATED = "position.updated"


def batch_group(batch_id: int) -> str:
    return f"batch.{batch_id}"


def order_changed(order) -> None:
    """Announce an order's new state to its batch page (after the transaction commits)."""
    if order.batch_id is None:
        return
    broadcast(batch_group(order.batch_id), ORDER_UPDATED, order_row(order))


def position_changed(position) -> None:
    """A fill moved a position: the owner's open pages refresh (the risk layer reads positions
    from the database, which this transaction has just written)."""
    broadcast(
        account_events.dashboard_group(position.account.owner_id),
        POSITION_UPDATED,
        {
            "account_id": position.account_id,
            "key": position.key,
            "product": position.product,
            "quantity": position.quantity,
            "average_price": str(position.average_price),
            "realized": str(position.realized),
        },
    )
