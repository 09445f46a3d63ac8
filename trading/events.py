"""Browser contract for order progress: one group per batch."""

from __future__ import annotations

from accounts.events import broadcast

ORDER_UPDATED = "order.updated"


def batch_group(batch_id: int) -> str:
    return f"batch.{batch_id}"


def order_changed(order) -> None:
    """Announce an order's new state to its batch page (after the transaction commits)."""
    if order.batch_id is None:
        return
    from .selectors import order_row

    broadcast(batch_group(order.batch_id), ORDER_UPDATED, order_row(order))
