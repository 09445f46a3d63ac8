"""Thin Celery tasks: take ids, call one service."""

from __future__ import annotations

from celery import shared_task


@shared_task(ignore_result=True)
def orders_send_task(account_id: int, batch_id: int | None = None) -> None:
    from .services import orders_send_account

    orders_send_account(account_id=account_id, batch_id=batch_id)


@shared_task(ignore_result=True)
def order_reconcile_task(order_id: int) -> None:
    from .services import order_reconcile

    order_reconcile(order_id=order_id)


@shared_task(ignore_result=True)
def orders_sweep_task() -> None:
    from .services import orders_sweep

    orders_sweep()
