"""Per-OpenAlgo-instance order throttle shared by every worker process (invariant I7).

A token bucket in Redis (one Lua call per order): RATE tokens per second, burst 1. OpenAlgo's
own limit is 10 orders/s per instance, counted over a moving second and per client address;
staying at 8 leaves room for clock skew and for orders a human places in OpenAlgo directly.

The bucket belongs to the OpenAlgo server, not to an account: two accounts served by one
OpenAlgo (same scheme, host and port) share one limit there, so they share one bucket here.
Placing, modifying and cancelling (one or all) each take a token: OpenAlgo counts them all.
"""

from __future__ import annotations

import functools
import time
from urllib.parse import urlsplit

from core.redis import client

RATE = 8.0
DEFAULT_PORTS = {"http": 80, "https": 443}

_TAKE = """
local rate, burst = tonumber(ARGV[1]), tonumber(ARGV[2])
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local state = redis.call('HMGET', KEYS[1], 'tokens', 'at')
local tokens, at = tonumber(state[1]) or burst, tonumber(state[2]) or now
tokens = math.min(burst, tokens + (now - at) * rate)
local wait = 0
if tokens >= 1 then
  tokens = tokens - 1
else
  wait = (1 - tokens) / rate
end
redis.call('HSET', KEYS[1], 'tokens', tokens, 'at', now)
-- Kept until the bucket is full again (a hold can leave it far below zero), then forgotten.
redis.call('PEXPIRE', KEYS[1], math.ceil((burst - tokens) / rate * 1000) + 10000)
return tostring(wait)
"""

# Empty the bucket so that the next token comes `ARGV[2]` seconds from now (never sooner than
# it would have anyway).
_HOLD = """
local rate, seconds = tonumber(ARGV[1]), tonumber(ARGV[2])
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local state = redis.call('HMGET', KEYS[1], 'tokens', 'at')
local tokens, at = tonumber(state[1]) or 1, tonumber(state[2]) or now
tokens = math.min(1, tokens + (now - at) * rate, 1 - seconds * rate)
redis.call('HSET', KEYS[1], 'tokens', tokens, 'at', now)
redis.call('PEXPIRE', KEYS[1], math.ceil((1 - tokens) / rate * 1000) + 10000)
return 0
"""


def host_key(host_url: str) -> str:
    """The OpenAlgo server a URL points at: scheme, host and port (default ports filled in),
    lower-cased; the path does not matter (one server, one limit)."""
    parts = urlsplit(host_url.strip())
    scheme = (parts.scheme or "http").lower()
    host = (parts.hostname or "").lower()
    try:
        port = parts.port
    except ValueError:
        port = None
    return f"{scheme}://{host}:{port or DEFAULT_PORTS.get(scheme, 0)}"


def _bucket(host_url: str) -> str:
    return f"throttle:orders:{host_key(host_url)}"


def acquire(host_url: str, *, rate: float = RATE, timeout: float = 30.0) -> bool:
    """Block until one more order request may go to this OpenAlgo server; False (nothing taken)
    when that would take longer than `timeout` seconds."""
    script = _script(_TAKE)
    deadline = time.monotonic() + timeout
    key = _bucket(host_url)
    while True:
        # Redis's own clock (TIME inside the script): every worker process measures against it.
        # One burst token only: a full-rate burst could still put 9 orders in one moving second.
        wait = float(script(keys=[key], args=[rate, 1]))
        if wait <= 0:
            return True
        if time.monotonic() + wait > deadline:
            return False
        time.sleep(wait)


def hold(host_url: str, seconds: float, *, rate: float = RATE) -> None:
    """Give this server's next token no sooner than `seconds` from now, to every worker: after
    it answered 429 its own window is full (orders placed from elsewhere count there too)."""
    _script(_HOLD)(keys=[_bucket(host_url)], args=[rate, seconds])


def reset(host_url: str) -> None:
    """Forget this server's bucket (a full burst is available again), e.g. after a `hold`."""
    client().delete(_bucket(host_url))


@functools.cache
def _script(source: str):
    return client().register_script(source)
