"""Login lockout: LOGIN_FAILURE_LIMIT failed passwords lock for LOGIN_LOCK_MINUTES counted from the
last failure, per account and per client address.

Why not allauth's rate limit: it is a sliding window (failures at 0, 1, 2, 3 and 14 minutes lock for
about a minute), and it keys on the login as typed (username and email are two counters). Here a
counter runs while failures come less than LOGIN_LOCK_MINUTES apart and resets after a quiet
LOGIN_LOCK_MINUTES; once it reaches the limit the key is locked until LOGIN_LOCK_MINUTES after the
last failure. The account key is the user (whichever spelling found them), or the typed login when no
user matches, so a probe cannot tell the two apart. The address is `security.client_ip` (trusted
proxies counted from the right).

Each attempt reserves its failure before the password is checked and gives it back on success, so
parallel guesses cannot all pass the check before any of them is counted. A success clears the
account's counter (only the password's holder can), never the address's: an attacker with a login of
their own cannot wipe their address's failures by logging in between guesses.
"""

from __future__ import annotations

import hashlib
import ipaddress
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from allauth.account.utils import filter_users_by_email, filter_users_by_username
from django.conf import settings
from django.core.cache import cache
from django.http import HttpRequest

from .security import client_ip

_PREFIX = "lockout:"


def _limit() -> int:
    return settings.LOGIN_FAILURE_LIMIT


def _window() -> float:
    return settings.LOGIN_LOCK_MINUTES * 60.0


@dataclass
class Attempt:
    account_key: str
    ip_key: str
    at: float
    # key -> the `last` it had before this attempt's reservation, to restore on success
    previous: dict[str, float] = field(default_factory=dict)


def account_key(credentials: dict) -> str:
    username = (credentials.get("username") or "").strip()
    email = (credentials.get("email") or "").strip()
    user = None
    if username:
        user = filter_users_by_username(username).first()
    if user is None and email:
        users = filter_users_by_email(email, prefer_verified=True)
        user = users[0] if users else None
    if user is not None:
        return f"user:{user.pk}"
    typed = (username or email).lower()
    return "login:" + hashlib.sha256(typed.encode()).hexdigest()


def ip_key(request: HttpRequest) -> str:
    ip = client_ip(request) or "unknown"
    try:
        addr = ipaddress.ip_address(ip)
    except ValueError:
        return f"ip:{ip}"
    if addr.version == 6:  # one host usually holds a whole /64
        return f"ip:{ipaddress.IPv6Network(f'{addr}/64', strict=False).network_address}"
    return f"ip:{addr}"


def _cache_key(key: str) -> str:
    return _PREFIX + hashlib.sha256(key.encode()).hexdigest()


@contextmanager
def _exclusive(key: str) -> Iterator[bool]:
    lock = _cache_key(key) + ":lock"
    deadline = time.monotonic() + 2.0
    while not cache.add(lock, 1, timeout=10):
        if time.monotonic() > deadline:
            yield False
            return
        time.sleep(0.01)
    try:
        yield True
    finally:
        cache.delete(lock)


def _state(key: str, now: float) -> tuple[int, float]:
    st = cache.get(_cache_key(key)) or {}
    n, last = int(st.get("n", 0)), float(st.get("last", 0.0))
    if now - last >= _window():
        return 0, 0.0
    return n, last


def _reserve(key: str, now: float) -> float | None:
    """Count one failure on `key` ahead of the check; None when the key is locked (nothing counted)."""
    with _exclusive(key) as mine:
        if not mine:
            return None  # fail closed: a stuck lock refuses rather than lets guesses through
        n, last = _state(key, now)
        if n >= _limit():
            return None
        cache.set(_cache_key(key), {"n": n + 1, "last": now}, timeout=int(_window()) + 60)
        return last


def _release(key: str, at: float, previous: float) -> None:
    with _exclusive(key) as mine:
        if not mine:
            return  # the failure stays counted: stricter, never looser
        n, last = _state(key, time.time())
        if n <= 1:
            cache.delete(_cache_key(key))
        else:
            # Put back the earlier failure's time unless another failure came after ours.
            cache.set(
                _cache_key(key), {"n": n - 1, "last": previous if last == at else last}, timeout=int(_window()) + 60
            )


def begin(request: HttpRequest, credentials: dict) -> Attempt | None:
    """Reserve this attempt's failure on the account and the address; None when either is locked."""
    attempt = Attempt(account_key=account_key(credentials), ip_key=ip_key(request), at=time.time())
    for key in (attempt.account_key, attempt.ip_key):
        previous = _reserve(key, attempt.at)
        if previous is None:
            for taken, prev in attempt.previous.items():
                _release(taken, attempt.at, prev)
            return None
        attempt.previous[key] = previous
    return attempt


def succeeded(attempt: Attempt | None) -> None:
    """The password was right: the account starts afresh; the address gets its reservation back."""
    if attempt is None:
        return
    with _exclusive(attempt.account_key) as mine:
        if mine:
            cache.delete(_cache_key(attempt.account_key))
    _release(attempt.ip_key, attempt.at, attempt.previous[attempt.ip_key])
