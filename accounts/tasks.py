"""Thin Celery tasks: take ids, call one service."""

from __future__ import annotations

from celery import shared_task

from .services import account_check


@shared_task(ignore_result=True)
def account_check_task(account_id: int) -> None:
    account_check(account_id=account_id)
