"""The platform's generation: a counter in Redis (`trading:generation`) that every worker start
increments (algomirror/celery.py), before the reconciliation it asks for (invariant I8).

A reconciliation records the generation it was read in; entries need a read of the current one.
So a restart, however short, makes the first entry after it wait for a positionbook read made
since: a read from before the restart says nothing about what happened while we were down.
"""

from __future__ import annotations

from core.redis import client

KEY = "trading:generation"


def current() -> int:
    """The generation now (0 until a worker has started since Redis was emptied)."""
    return int(client().get(KEY) or 0)


def advance() -> int:
    """A worker (re)started: begin a new generation and return it."""
    return int(client().incr(KEY))
