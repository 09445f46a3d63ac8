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


@shared_task(ignore_result=True)
def orders_cancel_all_task(account_id: int) -> None:
    from .services import orders_cancel_all

    orders_cancel_all(account_id=account_id)


@shared_task(ignore_result=True)
def account_close_all_task(account_id: int, user_id: int | None = None) -> None:
    from django.contrib.auth import get_user_model

    from .services import OrderRefused, account_close_all

    user = get_user_model().objects.filter(pk=user_id).first()
    try:
        account_close_all(user=user, account_id=account_id)
    except OrderRefused as e:
        from accounts.services import audit_record

        audit_record(user=user, action="close_refused", message=str(e))


@shared_task(ignore_result=True)
def books_refresh_task() -> None:
    """Fan out: each active account's books are read and reconciled by its own task."""
    from accounts.models import TradingAccount

    for account_id in TradingAccount.objects.filter(is_active=True).values_list("pk", flat=True):
        account_books_refresh_task.delay(account_id)


@shared_task(ignore_result=True)
def account_books_refresh_task(account_id: int) -> None:
    from .services import account_books_refresh

    account_books_refresh(account_id=account_id)
