"""The browser contract for live account updates: group names, event types, broadcasting."""

from __future__ import annotations

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.db import transaction

ACCOUNT_UPDATED = "account.updated"


def dashboard_group(user_id: int) -> str:
    return f"dashboard.{user_id}"


def broadcast(group: str, event_type: str, data: dict) -> None:
    """Send after the surrounding transaction commits, so pages never see rolled-back state."""

    def send() -> None:
        layer = get_channel_layer()
        message = {"type": event_type.replace(".", "_"), "data": data}
        if layer is None:
            return
        if hasattr(layer, "serialize"):  # channels_redis: publish directly, see group_publish
            from marketdata import store

            store.group_publish(layer, group, message)
        else:
            async_to_sync(layer.group_send)(group, message)

    transaction.on_commit(send)
