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


@shared_task(ignore_result=True)
def orders_poll_task() -> None:
    """Fan out: one poll per account with open orders, so accounts are polled in parallel."""
    from .models import Order

    ids = set(
        Order.objects.filter(status__in=[Order.Status.ACCEPTED, Order.Status.OPEN]).values_list("account_id", flat=True)
    )
    for account_id in ids:
        orders_poll_account_task.delay(account_id)


@shared_task(ignore_result=True)
def orders_poll_account_task(account_id: int) -> None:
    from .services import orders_poll_account

    orders_poll_account(account_id=account_id)
