"""The browser contract for live account updates: group names, event types, the card push."""

from __future__ import annotations

from core.realtime import broadcast

from .selectors import account_card

ACCOUNT_UPDATED = "account.updated"


def dashboard_group(user_id: int) -> str:
    return f"dashboard.{user_id}"


def account_updated(account) -> None:
    """The owner's dashboard card for `account` is pushed after the transaction commits."""
    broadcast(dashboard_group(account.owner_id), ACCOUNT_UPDATED, account_card(account))
