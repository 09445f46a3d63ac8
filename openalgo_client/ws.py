"""One authenticated OpenAlgo WebSocket connection (websocket-client), read on its own thread.

Frames are parsed on the reader thread and queued; `on_frames` is called after each one and
the asyncio side drains the queue in batches.

With a `policy`, the URL is normalised and the socket is opened by `netpolicy.connect_checked`
(an allowed address, checked at connect time) and handed to websocket-client, which then never
resolves or redirects on its own.
"""

from __future__ import annotations

import contextlib
import json
import logging
import threading
from collections import deque
from collections.abc import Callable
from urllib.parse import urlsplit

import websocket

from . import netpolicy, protocol
from .rest import KeySource, Policy, _tls, key_source

log = logging.getLogger(__name__)
AUTH_TIMEOUT = 5.0


class ConnectError(Exception):
    pass


class BrokerSocket:
    def __init__(
        self,
        url: str,
        api_key: str | KeySource,
        *,
        on_frames: Callable[[], None],
        on_closed: Callable[[str], None],
        connect_timeout: float = 3.0,
        policy: Policy | None = None,
    ) -> None:
        self.url = url
        self._policy = policy
        self._api_key = key_source(api_key)
        self._on_frames = on_frames
        self._on_closed = on_closed
        self._timeout = connect_timeout
        self._ws: websocket.WebSocket | None = None
        self._thread: threading.Thread | None = None
        self.frames: deque = deque()
        self._closing = False
        self.closed = False

    def connect(self) -> dict:
        """Connect and authenticate (blocking; run it in a thread). Returns the auth reply."""
        options: dict = {}
        try:
            if self._policy is not None:
                options["socket"] = self._checked_socket()
            # Pure-Python UTF-8 validation of every frame cost ~10% of the feed's CPU; JSON parsing
            # rejects malformed text anyway. No redirects: their target would be unchecked.
            ws = websocket.create_connection(
                self.url,
                timeout=self._timeout,
                enable_multithread=True,
                skip_utf8_validation=True,
                redirect_limit=0,
                **options,
            )
        except netpolicy.UrlRejected as e:
            raise ConnectError(f"{self.url}: {e}") from None
        except netpolicy.AddressRefused as e:
            raise ConnectError(str(e)) from None
        except (OSError, websocket.WebSocketException) as e:
            if "socket" in options:
                options["socket"].close()
            raise ConnectError(f"cannot connect to {self.url}: {type(e).__name__}: {e}") from None
        try:
            ws.settimeout(AUTH_TIMEOUT)
            ws.send(protocol.authenticate(self._api_key()))
            while True:
                frame = protocol.parse(ws.recv())
                if isinstance(frame, protocol.ErrorFrame):
                    raise ConnectError(f"authentication refused: {frame.code} {frame.message}")
                if isinstance(frame, protocol.Ack) and frame.type == "auth":
                    if frame.status != "success":
                        raise ConnectError(f"authentication failed: {frame.body.get('message')}")
                    break
        except (OSError, websocket.WebSocketException, ConnectError) as e:
            ws.close()
            raise e if isinstance(e, ConnectError) else ConnectError(f"authentication: {type(e).__name__}") from None
        ws.settimeout(None)
        self._ws = ws
        self._thread = threading.Thread(target=self._read, name=f"feed-reader {self.url}", daemon=True)
        self._thread.start()
        return frame.body

    def _checked_socket(self):
        url = netpolicy.normalise_ws_url(self.url)
        policy = self._policy() if callable(self._policy) else self._policy
        parts = urlsplit(url)
        host, secure = parts.hostname or "", parts.scheme == "wss"
        sock = netpolicy.connect_checked(host, parts.port or (443 if secure else 80), policy, self._timeout)
        if secure:
            try:
                sock = _tls().wrap_socket(sock, server_hostname=host)
            except (OSError, ValueError):
                sock.close()
                raise
        return sock

    def _read(self) -> None:
        ws = self._ws
        reason = "closed by the server"
        frames = self.frames
        try:
            while True:
                opcode, data = ws.recv_data(control_frame=False)
                if opcode == websocket.ABNF.OPCODE_CLOSE:
                    break
                if opcode != websocket.ABNF.OPCODE_TEXT:
                    continue
                frames.append(protocol.parse(data))
                # Signal after every frame: the receiver de-duplicates wake-ups itself, and a
                # "signal only when it was empty" check races with a drain in progress.
                self._on_frames()
        except (OSError, websocket.WebSocketException) as e:
            reason = f"connection lost: {type(e).__name__}"
        finally:
            self.closed = True
            if not self._closing:
                self._on_closed(reason)

    def send(self, text: str) -> bool:
        ws = self._ws
        if ws is None or self.closed:
            return False
        try:
            ws.send(text)
        except (OSError, websocket.WebSocketException):
            return False
        return True

    def close(self) -> None:
        self._closing = True
        self.closed = True
        if self._ws is not None:
            with contextlib.suppress(OSError, websocket.WebSocketException):
                self._ws.close(timeout=0.5)
            if self._ws.sock is not None:
                with contextlib.suppress(OSError):
                    self._ws.sock.close()


def dumps(obj) -> str:
    return json.dumps(obj, separators=(",", ":"))
