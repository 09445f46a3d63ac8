"""Trading writes: `orders` (placing, cancelling, modifying, fills) and `books` (the broker's
books and reconciliation). Re-exported here so callers say `trading.services.<name>`."""

from .books import (
    account_books_refresh,
    account_trading_state_set,
    position_repair,
)
from .orders import (
    Leg,
    OrderRefused,
    account_close_all,
    account_close_request,
    instrument_info,
    order_apply_update,
    order_cancel,
    order_modify,
    order_reconcile,
    order_refresh,
    orders_cancel_all,
    orders_create,
    orders_poll_account,
    orders_send_account,
    orders_sweep,
    position_close,
    positions_register_interest,
    split_quantity,
)

__all__ = [
    "Leg",
    "OrderRefused",
    "account_books_refresh",
    "account_close_all",
    "account_close_request",
    "account_trading_state_set",
    "instrument_info",
    "order_apply_update",
    "order_cancel",
    "order_modify",
    "order_reconcile",
    "order_refresh",
    "orders_cancel_all",
    "orders_create",
    "orders_poll_account",
    "orders_send_account",
    "orders_sweep",
    "position_close",
    "position_repair",
    "positions_register_interest",
    "split_quantity",
]
