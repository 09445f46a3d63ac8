"""The broker feed process. A placeholder until the market-data issue: it holds its slot in the
Procfile, stays up, and exits cleanly on SIGTERM/SIGINT."""

from __future__ import annotations

import logging
import signal
import threading

from django.core.management.base import BaseCommand

log = logging.getLogger(__name__)


class Command(BaseCommand):
    help = "Run the shared broker WebSocket feed (placeholder)."

    def handle(self, *args, **opts):
        stop = threading.Event()
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: stop.set())
        log.info("feed: placeholder running; the shared broker feed arrives with the market-data issue")
        while not stop.wait(3600):
            pass
        log.info("feed: stopped")
