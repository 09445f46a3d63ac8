"""What the feed is doing, as the status record and the monitor page show it (pure)."""

from __future__ import annotations

import enum
from collections import deque
from dataclasses import dataclass, field


class FeedState(enum.StrEnum):
    WAITING_FOR_LOCK = "waiting_for_lock"  # another feed holds the lock; connected to nothing
    CONNECTING = "connecting"  # the lock is ours, no socket yet
    WS = "ws"  # prices from a broker WebSocket
    REST = "rest"  # no WebSocket works: prices from REST multiquotes
    NO_ACCOUNTS = "no_accounts"  # no active account with a readable key


@dataclass
class TickCounts:
    """Ticks taken and refused; `last_at` is the monotonic time of the newest good price (None: none yet)."""

    total: int = 0
    bad: int = 0
    last_at: float | None = None
    window: deque[tuple[float, int]] = field(default_factory=lambda: deque(maxlen=20))

    def rate(self, now: float) -> float:
        """Ticks per second over the last (up to) 20 readings; each call is one reading."""
        self.window.append((now, self.total))
        t0, n0 = self.window[0]
        return round((self.total - n0) / (now - t0), 1) if now > t0 else 0.0
