"""Trading writes, one module per concern, re-exported here so callers say `trading.services.<name>`:

* `create` — order intents written and committed before anything is sent (I1);
* `send` — claiming and sending pending orders exactly once, exits gated by the broker (I2, I3, I7, I8);
* `reconcile` — settling unknown outcomes and what a dead worker left behind (I2);
* `fills` — order statuses polled or pushed, fills booked into positions;
* `actions` — modify, cancel, cancel everything, close a position or an account;
* `books` — the broker's books copied, positions reconciled, the trader's trading-state switch (I6, I8);
* `groups` — a mirrored order as one unit: retry, cancel-all, modify-all; close-everything followed;
* `enqueue` — the work handed to Celery workers (also what a page asks a worker to do).
"""

from ..freeze import split_quantity
from .actions import (
    account_cancel_all_request,
    account_close_all,
    account_close_request,
    account_close_run,
    order_cancel,
    order_modify,
    orders_cancel_all,
    position_close,
)
from .books import (
    account_books_refresh,
    account_client_or_refuse,
    account_reconcile_if_stale,
    account_trading_state_set,
    books_refresh_fan_out,
    position_repair,
)
from .common import Leg, OrderRefused
from .create import instrument_info, orders_check, orders_create
from .enqueue import books_refresh_request, orders_cancel_all_request
from .fills import (
    order_apply_update,
    order_refresh,
    orders_poll_account,
    orders_poll_fan_out,
    positions_register_interest,
)
from .groups import (
    account_close_start,
    account_close_tracked,
    batch_cancel_all,
    batch_modify_all,
    batch_retry,
    close_ticket,
)
from .reconcile import order_reconcile, orders_sweep
from .send import orders_send_account

__all__ = [
    "Leg",
    "OrderRefused",
    "account_books_refresh",
    "account_cancel_all_request",
    "account_client_or_refuse",
    "account_close_all",
    "account_close_request",
    "account_close_run",
    "account_close_start",
    "account_close_tracked",
    "account_reconcile_if_stale",
    "account_trading_state_set",
    "batch_cancel_all",
    "batch_modify_all",
    "batch_retry",
    "books_refresh_fan_out",
    "books_refresh_request",
    "close_ticket",
    "instrument_info",
    "orders_check",
    "order_apply_update",
    "order_cancel",
    "order_modify",
    "order_reconcile",
    "order_refresh",
    "orders_cancel_all",
    "orders_cancel_all_request",
    "orders_create",
    "orders_poll_account",
    "orders_poll_fan_out",
    "orders_send_account",
    "orders_sweep",
    "position_close",
    "position_repair",
    "positions_register_interest",
    "split_quantity",
]
