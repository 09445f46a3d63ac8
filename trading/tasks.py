"""Thin Celery tasks: take ids, call one service.

The services import this module lazily (trading/services/enqueue.py), so it may import them here.
"""

from __future__ import annotations

from celery import shared_task

from . import services


@shared_task(ignore_result=True)
def orders_send_task(account_id: int, batch_id: int | None = None) -> None:
    services.orders_send_account(account_id=account_id, batch_id=batch_id)


@shared_task(ignore_result=True)
def order_reconcile_task(order_id: int) -> None:
    services.order_reconcile(order_id=order_id)


@shared_task(ignore_result=True)
def orders_sweep_task() -> None:
    services.orders_sweep()


@shared_task(ignore_result=True)
def orders_poll_task() -> None:
    """Fan out: one poll per account with open orders, so accounts are polled in parallel."""
    services.orders_poll_fan_out()


@shared_task(ignore_result=True)
def orders_poll_account_task(account_id: int) -> None:
    services.orders_poll_account(account_id=account_id)


@shared_task(ignore_result=True)
def orders_cancel_all_task(account_id: int) -> None:
    services.orders_cancel_all(account_id=account_id)


@shared_task(ignore_result=True)
def account_close_all_task(account_id: int, user_id: int | None = None) -> None:
    services.account_close_run(account_id=account_id, user_id=user_id)


@shared_task(ignore_result=True)
def books_refresh_task() -> None:
    """Fan out: each active account's books are read and reconciled by its own task."""
    services.books_refresh_fan_out()


@shared_task(ignore_result=True)
def account_books_refresh_task(account_id: int) -> None:
    services.account_books_refresh(account_id=account_id)


@shared_task(ignore_result=True)
def account_close_tracked_task(account_id: int, user_id: int | None, ticket: str) -> None:
    services.account_close_tracked(account_id=account_id, user_id=user_id, ticket=ticket)
