"""Live prices for pages: a page asks to watch instruments; we join their Channels groups and
register the interest with the feed (expiring without heartbeats). Push only."""

from __future__ import annotations

import asyncio
import json
import time

from asgiref.sync import sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer
from django.conf import settings

from . import services, store

MAX_WATCH = 100


class MarketDataConsumer(AsyncJsonWebsocketConsumer):
    async def connect(self):
        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            await self.close(code=4403)
            return
        self.owner = f"page:{user.pk}:{self.channel_name}"
        self.watching: set[str] = set()
        self._outbox: list[dict] = []
        self._flush_scheduled = False
        await self.accept()

    async def disconnect(self, code):
        if getattr(self, "owner", None) is None:
            return
        for key in getattr(self, "watching", ()):
            await self.channel_layer.group_discard(store.group_name(key), self.channel_name)
        await sync_to_async(store.interest_clear)(self.owner)

    async def receive_json(self, content, **kwargs):
        action = content.get("action") if isinstance(content, dict) else None
        if action == "watch":
            await self._watch(content.get("symbols"))
        elif action == "heartbeat":
            await sync_to_async(store.interest_touch)(self.owner, ttl=settings.CHAIN_SESSION_TTL)
            await self.send_json({"type": "heartbeat", "ok": True})
        else:
            await self.send_json({"type": "error", "message": "action must be watch or heartbeat"})

    async def _watch(self, symbols) -> None:
        if not isinstance(symbols, list) or len(symbols) > MAX_WATCH:
            await self.send_json({"type": "error", "message": f"symbols must be a list of at most {MAX_WATCH}"})
            return
        asked: dict[str, int] = {}
        for item in symbols:
            key = item.get("key") if isinstance(item, dict) else item
            mode = item.get("mode", 2) if isinstance(item, dict) else 2
            if not isinstance(key, str) or not isinstance(mode, int):
                await self.send_json({"type": "error", "message": f"not a watchable instrument: {key!r}"})
                continue
            asked[key] = max(asked.get(key, 0), mode)
        # One bad instrument is refused on its own; the page still gets every other price. A watch
        # with nothing valid in it changes nothing.
        report = services.interest_clean(asked)
        for key, why in report.dropped.items():
            await self.send_json({"type": "error", "message": f"not a watchable instrument: {key!r} ({why})"})
        if asked and not report.kept:
            return
        report = await sync_to_async(services.interest_register)(
            owner=self.owner, keys=asked, ttl=settings.CHAIN_SESSION_TTL
        )
        keys = report.kept
        for key in self.watching - set(keys):
            await self.channel_layer.group_discard(store.group_name(key), self.channel_name)
        for key in set(keys) - self.watching:
            await self.channel_layer.group_add(store.group_name(key), self.channel_name)
        self.watching = set(keys)
        now_ms = time.time() * 1000
        snapshot = await sync_to_async(store.prices_get)(list(keys))
        for key, rec in snapshot.items():
            stale = not store.is_fresh(rec, now_ms, settings.PRICE_MAX_AGE)
            await self.send_json({"type": "price", "key": key, "stale": stale, **rec})
        await self.send_json({"type": "watching", "count": len(keys)})

    async def dispatch(self, message):
        # Channels closes stale DB connections (a thread hop) before every handler; price
        # updates never touch the database and arrive thousands a second, so skip that for them.
        if message.get("type") == "price.update":
            await self.price_update(message)
        else:
            await super().dispatch(message)

    async def price_update(self, event):
        # Updates that arrive together (the feed publishes a tick's prices as one burst) leave in
        # one WebSocket frame: {"type": "prices", "items": [...]}.
        self._outbox.append({"type": "price", "stale": False, **{k: v for k, v in event.items() if k != "type"}})
        if not self._flush_scheduled:
            self._flush_scheduled = True
            asyncio.get_running_loop().call_soon(lambda: asyncio.ensure_future(self._flush()))

    async def _flush(self) -> None:
        items, self._outbox = self._outbox, []
        self._flush_scheduled = False
        if items:
            await self.send(text_data=json.dumps({"type": "prices", "items": items}, separators=(",", ":")))
