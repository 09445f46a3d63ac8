"""The platform's generation: a number in Redis (`trading:generation`) that every worker start
raises (algomirror/celery.py), before the reconciliation it asks for (invariant I8).

A reconciliation records the generation it was read in; entries need a read of the current one.
So a restart, however short, makes the first entry after it wait for a positionbook read made
since: a read from before the restart says nothing about what happened while we were down.

It is not a plain counter: a Redis that lost its data (the embedded default keeps none on disk)
would start it again at 1 and hand out the very generation the last read before the restart
carries. Each start takes the larger of "one more" and the wall clock in milliseconds, so a new
generation is never one an old read already has.
"""

from __future__ import annotations

import time

from core.redis import client

KEY = "trading:generation"
_ADVANCE = """
local g = math.max((tonumber(redis.call('GET', KEYS[1])) or 0) + 1, tonumber(ARGV[1]))
redis.call('SET', KEYS[1], string.format('%d', g))
return string.format('%d', g)
"""


def current() -> int:
    """The generation now (0 until a worker has started since Redis was emptied)."""
    return int(client().get(KEY) or 0)


def advance() -> int:
    """A worker (re)started: begin a new generation and return it (atomic: several workers
    starting together each get their own)."""
    return int(client().eval(_ADVANCE, 1, KEY, time.time_ns() // 1_000_000))
