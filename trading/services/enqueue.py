"""Work the order services hand to Celery workers.

`trading.tasks` imports the services at module level (each task is one call into them), so the
services reach the tasks module through `_tasks()`: the one lazy import between trading's modules,
kept here so no service imports it on its own (a module-level import would be a cycle).
"""

from __future__ import annotations

from django.db import transaction


def _tasks():
    from .. import tasks  # the documented lazy import: tasks → services at module level

    return tasks


def send_on_commit(account_id: int, batch_id: int | None) -> None:
    """Send the account's pending orders (of `batch_id`) once the transaction that wrote them commits."""
    transaction.on_commit(lambda: _tasks().orders_send_task.delay(account_id, batch_id))


def send_now(account_id: int, batch_id: int | None) -> None:
    _tasks().orders_send_task.delay(account_id, batch_id)


def send_later(account_id: int, batch_id: int | None, *, countdown: float) -> None:
    _tasks().orders_send_task.apply_async((account_id, batch_id), countdown=countdown)


def reconcile_later(order_id: int, *, countdown: float) -> None:
    _tasks().order_reconcile_task.apply_async((order_id,), countdown=countdown)


def poll_account(account_id: int) -> None:
    _tasks().orders_poll_account_task.delay(account_id)


def books_refresh(account_id: int) -> None:
    _tasks().account_books_refresh_task.delay(account_id)


def close_all_on_commit(account_id: int, user_id: int | None) -> None:
    transaction.on_commit(lambda: _tasks().account_close_all_task.delay(account_id, user_id))


def close_all_later(account_id: int, user_id: int | None, *, countdown: float) -> None:
    _tasks().account_close_all_task.apply_async((account_id, user_id), countdown=countdown)


# Work a page asks for: queued only once the request's transaction commits, so a worker never
# reads rows the request has not committed and a rolled-back request queues nothing.
def orders_cancel_all_request(*, account_id: int) -> None:
    """Cancel every open order on the account, ours and outside ones, on a worker."""
    transaction.on_commit(lambda: _tasks().orders_cancel_all_task.delay(account_id))


def books_refresh_request(*, account_ids: list[int]) -> None:
    """Read each account's books from its broker now, one task per account."""
    ids = list(account_ids)

    def send() -> None:
        task = _tasks().account_books_refresh_task
        for pk in ids:
            task.delay(pk)

    transaction.on_commit(send)


def close_all_tracked_on_commit(account_id: int, user_id: int | None, ticket: str) -> None:
    """Close everything on a worker, recording how it ended on the page's ticket (groups.py)."""
    transaction.on_commit(lambda: _tasks().account_close_tracked_task.delay(account_id, user_id, ticket))
