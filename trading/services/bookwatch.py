"""How long an account's broker books have been unreadable or unknown, and the alert about it.

One unreadable read is routine (a timeout, a 500); several in a row are a broker a person must
look at — in particular one that answers every failure with an empty book (Angel, the Noren
family, an expired session), which our books then treat as unknown rather than flat. Each book
(orders, positions, trades) counts its consecutive bad reads in Redis; the third in a row of any
of them raises one alert for the account, and no more until every book has read well again (one
alert per episode, not one per cycle). The good read that ends an episode says so in an
informational alert.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.core.cache import cache

from accounts.choices import AlertKind, AlertLevel
from accounts.services import alert_raise

if TYPE_CHECKING:
    from accounts.models import TradingAccount

ALERT_AFTER = 3
ORDERS, POSITIONS, TRADES = "orders", "positions", "trades"
BOOKS = (ORDERS, POSITIONS, TRADES)
# Kept long enough to span a weekend without reads; an episode outlives its reads anyway.
TTL = 3 * 24 * 3600


def _count_key(account_id: int, book: str) -> str:
    return f"books-bad:{account_id}:{book}"


def _alerted_key(account_id: int) -> str:
    return f"books-bad-alerted:{account_id}"


def read_bad(account: TradingAccount, book: str, error: str) -> int:
    """One more bad read of `book` in a row; the alert once an episode reaches ALERT_AFTER."""
    key = _count_key(account.pk, book)
    cache.add(key, 0, TTL)
    try:
        n = cache.incr(key)
    except ValueError:  # expired between the two calls
        cache.set(key, n := 1, TTL)
    if n >= ALERT_AFTER and cache.add(_alerted_key(account.pk), book, TTL):
        alert_raise(
            kind=AlertKind.BROKER_UNREADABLE,
            level=AlertLevel.CRITICAL,
            account=account,
            message=f"{account.name}: the broker's {book} book could not be trusted {n} reads in a row "
            f"({error}). New orders wait; exits are held until it reads true again — check the broker session",
            details={"book": book, "reads": n, "error": error[:200]},
        )
    return n


def read_good(account: TradingAccount, book: str) -> None:
    """A trustworthy read of `book`: its count starts again, and the episode ends once no book
    is past the threshold."""
    if not cache.delete(_count_key(account.pk, book)):
        return  # the usual case: nothing was counted
    if cache.get(_alerted_key(account.pk)) is None:
        return
    counts = cache.get_many([_count_key(account.pk, b) for b in BOOKS])
    if any(n >= ALERT_AFTER for n in counts.values()):
        return
    if cache.delete(_alerted_key(account.pk)):
        alert_raise(
            kind=AlertKind.BROKER_UNREADABLE,
            level=AlertLevel.INFO,
            account=account,
            message=f"{account.name}: the broker's books read true again",
            details={"book": book, "cleared": True},
        )


def bad_reads(account_id: int, book: str) -> int:
    return cache.get(_count_key(account_id, book)) or 0
