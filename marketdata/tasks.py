"""Beat tasks whose rhythm follows the trading calendar."""

from __future__ import annotations

from celery import shared_task
from django.utils import timezone

from accounts.services import accounts_due_for_check
from accounts.tasks import account_check_task
from core.calendar import services_active

from .selectors import calendar_load


@shared_task(ignore_result=True)
def accounts_check_due() -> None:
    """Fan out one health check per due account (every 30 s while the market is active, every
    5 min otherwise), so a slow or dead broker never delays the others. It lives here because
    the calendar decides the rhythm, and accounts sit below market data."""
    now = timezone.now()
    for pk in accounts_due_for_check(now=now, market_open=services_active(now, calendar_load())):
        account_check_task.delay(pk)
