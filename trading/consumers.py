"""Live progress of one order batch: per-account rows as each order moves. Push only."""

from __future__ import annotations

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer

from . import events, selectors


class BatchConsumer(AsyncJsonWebsocketConsumer):
    async def connect(self):
        user = self.scope.get("user")
        pk = int(self.scope["url_route"]["kwargs"]["pk"])
        if user is None or not user.is_authenticated or not await self._visible(user, pk):
            await self.close(code=4403)
            return
        self.group = events.batch_group(pk)
        await self.channel_layer.group_add(self.group, self.channel_name)
        await self.accept()
        # Joined first, then the snapshot: an update that landed between the page render and
        # this connection (a fill pushed by the order stream) is never lost.
        for row in await self._rows(pk):
            await self.send_json({"type": "order.updated", "data": row})

    @database_sync_to_async
    def _visible(self, user, pk: int) -> bool:
        return selectors.batch_get(user=user, pk=pk) is not None

    @database_sync_to_async
    def _rows(self, pk: int) -> list[dict]:
        return selectors.batch_rows(batch_id=pk)

    async def disconnect(self, code):
        if hasattr(self, "group"):
            await self.channel_layer.group_discard(self.group, self.channel_name)

    async def order_updated(self, event):
        await self.send_json({"type": "order.updated", "data": event["data"]})
