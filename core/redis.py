"""The one Redis connection pool of a process (prices, locks, throttles, pushes to pages).

Key layouts belong to the modules that own them (`marketdata.store`, `trading.locks`); this
module only hands out the client.
"""

from __future__ import annotations

from functools import lru_cache

import redis
from django.conf import settings


@lru_cache(maxsize=4)
def _client(url: str) -> redis.Redis:
    return redis.Redis.from_url(url, decode_responses=True)


def client() -> redis.Redis:
    return _client(settings.REDIS_URL)
