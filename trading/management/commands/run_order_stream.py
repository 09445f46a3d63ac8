"""The order-update process: one WebSocket per account, updates applied as they arrive."""

from __future__ import annotations

import signal
import threading

from django.core.management.base import BaseCommand

from accounts.keycheck import require_readable_keys
from trading.orderstream import OrderStreams


class Command(BaseCommand):
    help = "Listen to every active account's order updates (duplicates are harmless: applied once)."

    def add_arguments(self, parser):
        parser.add_argument("--refresh", type=float, default=10.0, help="seconds between account list reloads")

    def handle(self, *args, **opts):
        require_readable_keys()  # stop here if the encryption keys cannot read the stored data
        stop = threading.Event()
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: stop.set())
        OrderStreams(refresh_every=opts["refresh"]).run(stop)
