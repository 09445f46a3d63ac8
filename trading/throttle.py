"""Per-OpenAlgo-instance order throttle shared by every worker process (invariant I7).

A token bucket in Redis (one Lua call per order): RATE tokens per second, burst RATE. OpenAlgo's
own limit is 10 orders/s per instance, counted over a moving second; staying at 8 leaves room
for clock skew and for orders a human places in OpenAlgo directly.
"""

from __future__ import annotations

import functools
import time

from core.redis import client

RATE = 8.0
_TAKE = """
local rate, burst = tonumber(ARGV[1]), tonumber(ARGV[2])
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local state = redis.call('HMGET', KEYS[1], 'tokens', 'at')
local tokens, at = tonumber(state[1]) or burst, tonumber(state[2]) or now
tokens = math.min(burst, tokens + (now - at) * rate)
if tokens >= 1 then
  redis.call('HSET', KEYS[1], 'tokens', tokens - 1, 'at', now)
  redis.call('PEXPIRE', KEYS[1], 10000)
  return 0
end
redis.call('HSET', KEYS[1], 'tokens', tokens, 'at', now)
redis.call('PEXPIRE', KEYS[1], 10000)
return tostring((1 - tokens) / rate)
"""


def acquire(account_id: int, *, rate: float = RATE, timeout: float = 30.0) -> bool:
    """Block until this account may send one more order (False after `timeout`)."""
    script = _script()
    # One burst token only: a full-rate burst could still put 9 orders in one moving second.
    deadline = time.monotonic() + timeout
    while True:
        # Redis's own clock (TIME inside the script): every worker process measures against it.
        wait = float(script(keys=[f"throttle:orders:{account_id}"], args=[rate, 1]))
        if wait <= 0:
            return True
        if time.monotonic() + wait > deadline:
            return False
        time.sleep(wait)


@functools.cache
def _script():
    return client().register_script(_TAKE)
