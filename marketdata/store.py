"""Redis layout for live market data, shared by the feed process, the web and the workers.

* `md:px` — hash "EXCHANGE:SYMBOL" → JSON price record {ltp, ts (ms, receipt), src, …quote}.
* `md:want:<owner>` — hash of wanted keys → mode; `md:owners` — zset owner → expiry (epoch s).
  The feed subscribes exactly the union of unexpired owners' keys (max mode per key).
* `md:feed:lock` / `md:feed:fence` — the single-feed lock and its fencing counter.
* `md:feed:status`, `md:feed:events` — what the monitor page shows.

Key names live here only. The price hash is written by the feed through a Lua script that
checks the fencing token, so a feed that lost its lock can never overwrite fresher prices.
"""

from __future__ import annotations

import json
import math
import time

from django.conf import settings

from core.realtime import group_wire
from core.redis import client

PERSISTENT = 4_000_000_000.0  # "never expires" score for md:owners

PRICES = "md:px"
OWNERS = "md:owners"
LOCK = "md:feed:lock"
FENCE = "md:feed:fence"
STATUS = "md:feed:status"
EVENTS = "md:feed:events"


def want_key(owner: str) -> str:
    return f"md:want:{owner}"


def dropped_key(owner: str) -> str:
    """Hash of the keys `owner` asked for that are not streamed → why (an invalid key, the cap)."""
    return f"md:dropped:{owner}"


# ------------------------------------------------------------------ prices
def price_get(key: str) -> dict | None:
    raw = client().hget(PRICES, key)
    return json.loads(raw) if raw else None


def prices_get(keys: list[str]) -> dict[str, dict]:
    if not keys:
        return {}
    return {k: json.loads(v) for k, v in zip(keys, client().hmget(PRICES, keys), strict=True) if v}


def is_fresh(record: dict | None, now_ms: float, max_age_s: float) -> bool:
    if not record:
        return False
    ltp = record.get("ltp")
    return (
        isinstance(ltp, (int, float))
        and math.isfinite(ltp)
        and ltp > 0
        and now_ms - record.get("ts", 0) <= max_age_s * 1000
    )


def fresh_price(key: str, *, now: float | None = None, max_age: float | None = None) -> dict | None:
    """The latest price of "EXCHANGE:SYMBOL" if it is usable (> 0, finite, young enough), else None."""
    record = price_get(key)
    now_ms = (time.time() if now is None else now) * 1000
    return record if is_fresh(record, now_ms, settings.PRICE_MAX_AGE if max_age is None else max_age) else None


# ------------------------------------------------------------------ interest
def interest_set(
    owner: str,
    keys: dict[str, int],
    *,
    ttl: float | None = None,
    now: float | None = None,
    dropped: dict[str, str] | None = None,
) -> None:
    """Replace what `owner` wants (key → mode) and what was refused of it (`dropped`, key → why).
    `ttl` seconds without a touch expires it."""
    now = time.time() if now is None else now
    r = client()
    with r.pipeline() as p:
        p.delete(want_key(owner), dropped_key(owner))
        if dropped:
            p.hset(dropped_key(owner), mapping=dropped)
            if ttl is not None:
                p.expire(dropped_key(owner), max(int(ttl) * 4, 60))
        if keys:
            p.hset(want_key(owner), mapping={k: int(m) for k, m in keys.items()})
        if keys or dropped:  # listed while anything of it is wanted or refused (the page says which)
            p.zadd(OWNERS, {owner: PERSISTENT if ttl is None else now + ttl})
        else:
            p.zrem(OWNERS, owner)
        p.execute()


def interest_touch(owner: str, *, ttl: float, now: float | None = None) -> None:
    """A heartbeat: push the owner's expiry out (only if it still exists)."""
    now = time.time() if now is None else now
    client().zadd(OWNERS, {owner: now + ttl}, xx=True)


def interest_dropped(owner: str) -> dict[str, str]:
    return client().hgetall(dropped_key(owner))


def interest_owners(prefix: str = "") -> list[str]:
    """Owners with registered interest (live or not yet swept), optionally by name prefix."""
    return [o for o in client().zrange(OWNERS, 0, -1) if o.startswith(prefix)]


def interest_of(owner: str) -> dict[str, int]:
    return {k: int(m) for k, m in client().hgetall(want_key(owner)).items()}


def interest_clear(owner: str) -> None:
    with client().pipeline() as p:
        p.delete(want_key(owner), dropped_key(owner))
        p.zrem(OWNERS, owner)
        p.execute()


def wanted(*, now: float | None = None) -> dict[str, int]:
    """Union of every live owner's keys (highest mode wins); expired owners are dropped."""
    now = time.time() if now is None else now
    r = client()
    expired = r.zrangebyscore(OWNERS, "-inf", now)
    if expired:
        with r.pipeline() as p:
            for owner in expired:
                p.delete(want_key(owner))
            p.zrem(OWNERS, *expired)
            p.execute()
    owners = r.zrangebyscore(OWNERS, now, "+inf")
    out: dict[str, int] = {}
    if owners:
        with r.pipeline() as p:
            for owner in owners:
                p.hgetall(want_key(owner))
            for mapping in p.execute():
                for k, m in mapping.items():
                    out[k] = max(out.get(k, 0), int(m))
    return out


# ------------------------------------------------------------------ feed status
def feed_status() -> dict:
    raw = client().get(STATUS)
    return json.loads(raw) if raw else {}


def feed_events(limit: int = 50) -> list[dict]:
    return [json.loads(x) for x in client().lrange(EVENTS, 0, limit - 1)]


def group_publish_args(layer, key: str, message: dict) -> tuple[str, bytes]:
    """(channel, payload) that channels_redis's pub/sub layer publishes for a group_send, so the
    feed can pipeline many sends in one round trip. Pinned by a test against the library."""
    return group_wire(layer, group_name(key), message)


def group_name(key: str) -> str:
    """Channels group for one instrument ("NFO:NIFTY…CE" → "md.NFO.NIFTY…CE"); only the
    characters Channels allows in group names survive."""
    return "md." + "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in key.replace(":", "."))[:95]
