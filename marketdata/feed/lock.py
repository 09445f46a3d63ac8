"""The single-feed lock in Redis, with a fencing token.

Each try to take the lock draws a new token from a counter; the holder renews the lock every
TTL/5 and every write of prices and status runs as one Lua script that first checks the lock
still holds its token. A feed that lost its lock (paused, partitioned) can therefore never
overwrite fresher prices written by the feed that took over.
"""

from __future__ import annotations

import asyncio
import contextlib

import redis.asyncio as aioredis

from marketdata import store

LOCK_TTL_MS = 15000
RENEW_EVERY = LOCK_TTL_MS / 5000  # seconds
ACQUIRE_RETRY = 1.0  # seconds between tries while another feed holds the lock

_FENCED_WRITE = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
if #ARGV > 2 then redis.call('HSET', KEYS[2], unpack(ARGV, 3)) end
if ARGV[2] ~= '' then redis.call('SET', KEYS[3], ARGV[2]) end
return 1
"""
_RENEW = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0
"""
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


class FencedLock:
    def __init__(self, redis: aioredis.Redis, *, ttl_ms: int = LOCK_TTL_MS) -> None:
        self.redis = redis  # decode_responses=True
        self.ttl_ms = ttl_ms
        self.token: str | None = None
        self._write = redis.register_script(_FENCED_WRITE)
        self._renew = redis.register_script(_RENEW)
        self._release = redis.register_script(_RELEASE)

    async def try_acquire(self) -> bool:
        token = str(await self.redis.incr(store.FENCE))
        if await self.redis.set(store.LOCK, token, nx=True, px=self.ttl_ms):
            self.token = token
            return True
        return False

    async def acquire(self, stop: asyncio.Event) -> bool:
        """Wait until this process holds the lock (True) or `stop` is set (False)."""
        while not stop.is_set():
            if await self.try_acquire():
                return True
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), ACQUIRE_RETRY)
        return False

    async def renew(self) -> bool:
        """False: the lock expired or another feed holds it now."""
        return bool(await self._renew(keys=[store.LOCK], args=[self.token, self.ttl_ms]))

    async def release(self) -> None:
        await self._release(keys=[store.LOCK], args=[self.token])

    async def write(self, *, prices: dict[str, str], status: str) -> bool:
        """Price records (key → JSON) into the price hash and, unless empty, the status record, only
        while the lock holds our token. False: refused, this process no longer holds the lock."""
        args: list[str | None] = [self.token, status]
        for key, record in prices.items():
            args += [key, record]
        return bool(await self._write(keys=[store.LOCK, store.PRICES, store.STATUS], args=args))
