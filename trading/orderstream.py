"""Order updates pushed by each account's OpenAlgo WebSocket (`subscribe_orders`).

One connection per active account, each read on its own thread (websocket-client). Updates go
through `order_apply_update`, the same compare-and-set path as polling, so an update seen twice,
late, or also polled is applied once. Polling keeps running underneath: an instance that offers
no order stream, or a stream that drops, only makes fills arrive at polling speed.
"""

from __future__ import annotations

import functools
import json
import logging
import threading
import time
from typing import TYPE_CHECKING

from django.db import close_old_connections

from accounts import crypto
from accounts.selectors import account_list_active
from accounts.services import account_socket
from openalgo_client.protocol import Ack
from openalgo_client.ws import BrokerSocket, ConnectError

from .services import order_apply_update

if TYPE_CHECKING:
    from accounts.models import TradingAccount

log = logging.getLogger(__name__)
SUBSCRIBE = json.dumps({"action": "subscribe_orders"})


class Connection:
    def __init__(self, account: TradingAccount) -> None:
        self.account_id = account.pk
        self.url = account.ws_url
        self.signature = (account.ws_url, account.api_key_encrypted)
        self.socket: BrokerSocket | None = None
        self.retry_at = 0.0
        self.backoff = 1.0
        self.subscribed = False
        self._lock = threading.Lock()
        self._socket = functools.partial(account_socket, account, on_frames=self._drain, on_closed=self._closed)
        self._socket()  # an unreadable key halts the account here and keeps it out of the streams

    def open(self) -> None:
        sock = self._socket()
        try:
            sock.connect()
        except ConnectError as e:
            self._failed(str(e))
            return
        self.socket = sock
        if not sock.send(SUBSCRIBE):
            self._failed("could not subscribe")
            return
        self.backoff = 1.0

    def _failed(self, why: str) -> None:
        log.warning("order stream for account %s: %s (retry in %.0f s)", self.account_id, why, self.backoff)
        self.socket = None
        self.retry_at = time.monotonic() + self.backoff
        self.backoff = min(self.backoff * 2, 60.0)

    def _closed(self, why: str) -> None:
        self.subscribed = False
        self._failed(why)

    def _drain(self) -> None:
        sock = self.socket
        if sock is None or not self._lock.acquire(blocking=False):
            return  # the thread already draining picks this frame up
        try:
            close_old_connections()
            while sock.frames:
                frame = sock.frames.popleft()
                if not isinstance(frame, Ack):
                    continue
                if frame.type == "subscribe_orders":
                    self.subscribed = frame.status == "success"
                elif frame.type == "order_update":
                    try:
                        order_apply_update(account_id=self.account_id, data=frame.body)
                    except Exception:  # one bad update must not kill the account's stream
                        log.exception("order update for account %s not applied", self.account_id)
        finally:
            self._lock.release()

    def close(self) -> None:
        if self.socket is not None:
            self.socket.close()
            self.socket = None


class OrderStreams:
    """Keeps one connection per active account, reconnecting with backoff, until stopped."""

    def __init__(self, refresh_every: float = 10.0) -> None:
        self.connections: dict[int, Connection] = {}
        self.refresh_every = refresh_every

    def sync(self) -> None:
        close_old_connections()
        accounts = {a.pk: a for a in account_list_active(with_ws_url=True)}
        for pk in list(self.connections):
            conn = self.connections[pk]
            a = accounts.get(pk)
            if a is None or conn.signature != (a.ws_url, a.api_key_encrypted):
                conn.close()
                del self.connections[pk]
        for pk, a in accounts.items():
            if pk not in self.connections:
                try:
                    self.connections[pk] = Connection(a)
                except crypto.KeyUnreadable:
                    continue
        now = time.monotonic()
        for conn in self.connections.values():
            if conn.socket is None and now >= conn.retry_at:
                conn.open()

    def run(self, stop: threading.Event) -> None:
        while not stop.is_set():
            try:
                self.sync()
            except Exception:
                log.exception("order streams: sync failed")
            stop.wait(self.refresh_every)
        for conn in self.connections.values():
            conn.close()
