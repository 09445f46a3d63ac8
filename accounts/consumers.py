"""Live dashboard: pushes account updates to the signed-in owner. Push only; no trading logic."""

from __future__ import annotations

from channels.generic.websocket import AsyncJsonWebsocketConsumer

from . import events


class DashboardConsumer(AsyncJsonWebsocketConsumer):
    async def connect(self):
        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            await self.close(code=4403)
            return
        self.group = events.dashboard_group(user.pk)
        await self.channel_layer.group_add(self.group, self.channel_name)
        await self.accept()

    async def disconnect(self, code):
        if hasattr(self, "group"):
            await self.channel_layer.group_discard(self.group, self.channel_name)

    async def account_updated(self, event):
        await self.send_json({"type": events.ACCOUNT_UPDATED, "data": event["data"]})

    async def position_updated(self, event):
        # Fills from trading.events.position_changed: open books pages refresh their positions.
        await self.send_json({"type": "position.updated", "data": event["data"]})
