"""Pushes to open pages through the Channels layer, from synchronous code (services, tasks).

Group names and event types belong to each app's `events.py`; this module only delivers.
"""

from __future__ import annotations

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.conf import settings
from django.db import transaction

from . import redis


def group_wire(layer, group: str, message: dict) -> tuple[str, bytes]:
    """(channel, payload) that channels_redis's pub/sub layer publishes for a group_send, so a
    caller can pipeline many sends in one round trip. Pinned by a test against the library."""
    prefix = settings.CHANNEL_LAYERS["default"].get("CONFIG", {}).get("prefix", "asgi")
    return f"{prefix}__group__{group}", layer.serialize(message)


def group_publish(layer, group: str, message: dict) -> None:
    """A group_send in one plain PUBLISH: `async_to_sync(group_send)` builds an event loop and a
    Redis connection per call, which cost ~12 ms per order update in a worker thread."""
    redis.client().publish(*group_wire(layer, group, message))


def send_now(group: str, event_type: str, data: dict) -> None:
    layer = get_channel_layer()
    if layer is None:
        return
    message = {"type": event_type.replace(".", "_"), "data": data}
    if hasattr(layer, "serialize"):  # channels_redis pub/sub layer
        group_publish(layer, group, message)
    else:
        async_to_sync(layer.group_send)(group, message)


def broadcast(group: str, event_type: str, data: dict) -> None:
    """Send after the surrounding transaction commits, so pages never see rolled-back state."""
    transaction.on_commit(lambda: send_now(group, event_type, data))
