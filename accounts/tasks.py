"""Thin Celery tasks: take ids, call one service."""

from __future__ import annotations

from celery import shared_task
from django.utils import timezone


@shared_task(ignore_result=True)
def account_check_task(account_id: int) -> None:
    from .services import account_check

    account_check(account_id=account_id)


@shared_task(ignore_result=True)
def accounts_check_due() -> None:
    """Fan out one check per due account, so a slow or dead broker never delays the others."""
    from marketdata.calendar import services_active
    from marketdata.selectors import calendar_load

    from .services import accounts_due_for_check

    now = timezone.now()
    for pk in accounts_due_for_check(now=now, market_open=services_active(now, calendar_load())):
        account_check_task.delay(pk)
