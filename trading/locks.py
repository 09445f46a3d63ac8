"""Redis locks for trading, shared by every worker process (key layout: `lock:exit:…`)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from django.conf import settings
from redis.exceptions import LockError

from core.redis import client


@contextlib.contextmanager
def exit_lock(order) -> Iterator[bool]:
    """One lock per (account, instrument, product) around an exit's position check and its send,
    so two exits racing on two workers cannot both see the same open quantity. It outlives one
    send, client timeout included. Yields whether it is held: not after 15 s of waiting means
    another exit for the position is still being sent."""
    name = f"lock:exit:{order.account_id}:{order.exchange}:{order.symbol}:{order.product}"
    lock = client().lock(name, timeout=settings.OPENALGO_TIMEOUT * 2 + 10, blocking_timeout=15)
    held = lock.acquire()
    try:
        yield held
    finally:
        if held:
            # Expired while a send hung: the next sender re-checks the position anyway.
            with contextlib.suppress(LockError):
                lock.release()
