"""The feed's one clock: every reading of time in the engine goes through it, so a fake drives it all.

`monotonic()` measures durations (stalls, backoffs, throttles, caches); `wall()` is epoch seconds
for what other processes read (price `ts`, status `updated`, event `ts`, interest expiry).
Timers still run on the event loop (`asyncio.sleep`, `call_later`); tests call the engine's step
functions instead of waiting for them.
"""

from __future__ import annotations

import time
from typing import Protocol


class Clock(Protocol):
    def monotonic(self) -> float: ...

    def wall(self) -> float: ...


class SystemClock:
    def monotonic(self) -> float:
        return time.monotonic()

    def wall(self) -> float:
        return time.time()
