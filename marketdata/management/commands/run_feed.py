"""The broker feed process: exactly one live broker WebSocket for the platform (see stream.py)."""

from __future__ import annotations

import asyncio
import signal

from asgiref.sync import sync_to_async
from channels.layers import get_channel_layer
from django.conf import settings
from django.core.management.base import BaseCommand

from accounts.keycheck import require_readable_keys
from marketdata.selectors import market_status_now
from marketdata.services import feed_accounts, rest_quotes
from marketdata.stream import FeedEngine


async def market_open() -> bool:
    return (await sync_to_async(market_status_now)()).is_open


async def run() -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    engine = FeedEngine(
        redis_url=settings.REDIS_URL,
        load_accounts=sync_to_async(feed_accounts),
        market_open=market_open,
        channel_layer=get_channel_layer(),
        stall_after=settings.FEED_STALL_SECONDS,
        min_interval=settings.FEED_MIN_INTERVAL_MS / 1000,
        rest_poll=rest_quotes,
    )
    await engine.run(stop)


class Command(BaseCommand):
    help = "Run the shared broker feed (one per installation; a second one waits for the lock)."

    def handle(self, *args, **opts):
        require_readable_keys()  # stop here if the encryption keys cannot read the stored data
        asyncio.run(run())
