"""Redis locks for trading, shared by every worker process (key layout: `lock:exit:…`,
`lock:close-all:…`)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from django.conf import settings
from redis.exceptions import LockError

from core.redis import client

EXIT_LOCK_WAIT = 15.0  # seconds a second exit of one position waits for the first one's lock


@contextlib.contextmanager
def _held(name: str, *, timeout: float, wait: float) -> Iterator[bool]:
    """Hold the Redis lock `name` (expiring after `timeout` s) once it is free within `wait` s;
    yields whether it is held."""
    lock = client().lock(name, timeout=timeout, blocking_timeout=wait)
    held = lock.acquire()
    try:
        yield held
    finally:
        if held:
            # Expired meanwhile (a hung call): whoever holds it now re-checks the broker anyway.
            with contextlib.suppress(LockError):
                lock.release()


@contextlib.contextmanager
def exit_lock(order, *, ttl: float | None = None) -> Iterator[bool]:
    """One lock per (account, instrument, product) around an exit's position check and its send,
    so two exits racing on two workers cannot both see the same open quantity. It outlives one
    send, client timeout included (`ttl`: the caller's longest hold, if longer). Yields whether it
    is held: not after EXIT_LOCK_WAIT seconds of waiting means another exit for the position is
    still being sent."""
    name = f"lock:exit:{order.account_id}:{order.exchange}:{order.symbol}:{order.product}"
    with _held(name, timeout=max(settings.OPENALGO_TIMEOUT * 2 + 10, ttl or 0), wait=EXIT_LOCK_WAIT) as held:
        yield held


@contextlib.contextmanager
def close_all_lock(account_id: int) -> Iterator[bool]:
    """One "close everything" at a time per account, from its first cancel to its batch being
    committed: a second one waits, then finds the first one's batch running and joins it (instead
    of cancelling the exits the first has just placed). Yields whether it is held: not after
    60 s of waiting means another close-out is still being placed."""
    with _held(f"lock:close-all:{account_id}", timeout=settings.OPENALGO_TIMEOUT * 6 + 60, wait=60) as held:
        yield held
