"""Moving-window rate limits as OpenAlgo's Flask-Limiter applies them: one bucket per route
and client IP, counted over the last second."""

from __future__ import annotations

import time
from collections import deque


class MovingWindow:
    def __init__(self, limit: int, period: float = 1.0) -> None:
        self.limit = limit
        self.period = period
        self._hits: dict[tuple[str, str], deque[float]] = {}

    @property
    def text(self) -> str:
        """The limit as Flask-Limiter spells it in the 429 body, e.g. "10 per 1 second"."""
        unit = "second" if self.period == 1 else f"{self.period:g} seconds"
        return f"{self.limit} per 1 {unit}"

    def hit(self, route: str, client: str, now: float | None = None) -> bool:
        now = time.monotonic() if now is None else now
        window = self._hits.setdefault((route, client), deque())
        while window and window[0] <= now - self.period:
            window.popleft()
        if len(window) >= self.limit:
            return False
        window.append(now)
        return True

    def reset(self) -> None:
        self._hits.clear()
