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


def account_changed(account_id: int) -> None:
    """Trading state or reconciliation changed: refresh the owner's dashboard card."""
    from accounts.events import ACCOUNT_UPDATED, dashboard_group
    from accounts.models import TradingAccount
    from accounts.selectors import account_card

    account = TradingAccount.objects.get(pk=account_id)
    broadcast(dashboard_group(account.owner_id), ACCOUNT_UPDATED, account_card(account))


POSITION_UPDATED = "position.updated"


def position_changed(position) -> None:
    """A fill moved a position: the owner's open pages refresh (the risk layer reads positions
    from the database, which this transaction has just written)."""
    from accounts.events import dashboard_group

    broadcast(
        dashboard_group(position.account.owner_id),
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
