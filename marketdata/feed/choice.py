"""Which broker account carries the feed: pure decisions (no I/O, no Django; the caller passes `now`).

* Failover order: the preferred account (the market-data role) first, then by measured latency
  (unmeasured last), then by id.
* After a drop: one immediate reconnect to the same account (not after a stall: that account is
  skipped), then the others in failover order. Accounts in backoff wait their turn, unless every
  account is in backoff: then the first of them is tried anyway, so the feed never simply gives up.
* A failed account is retried after 2 s, 4 s, 8 s … at most 60 s (`Backoff`, monotonic seconds).
* While prices come from REST, no WebSocket is tried until some account's backoff has run out.
* Return to primary: while the feed runs on another account, the preferred one is probed once its
  backoff has run out; the engine hands the feed back only if that probe sees ticks.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from openalgo_client.rest import OpenAlgoClient
    from openalgo_client.ws import BrokerSocket

BACKOFF_BASE, BACKOFF_CAP = 2.0, 60.0


@dataclass(frozen=True)
class FeedAccount:
    id: int
    name: str
    ws_url: str
    host_url: str
    # Opens an unconnected socket to this account (on_frames=, on_closed=, connect_timeout=);
    # the key stays inside the accounts service.
    socket: Callable[..., BrokerSocket] = field(repr=False)
    rest: Callable[[], OpenAlgoClient] = field(repr=False)
    preferred: bool = False
    latency_ms: int | None = None


@dataclass
class Backoff:
    failures: int = 0
    next_try: float = 0.0

    def fail(self, now: float) -> None:
        self.failures += 1
        self.next_try = now + min(BACKOFF_BASE * 2 ** (self.failures - 1), BACKOFF_CAP)

    def ready(self, now: float) -> bool:
        return now >= self.next_try

    def reset(self) -> None:
        self.failures, self.next_try = 0, 0.0


@dataclass(frozen=True)
class Attempt:
    account: FeedAccount
    reason: str  # what the "connected" event will say
    reconnect: bool = False  # the account that just dropped, tried again at once


@dataclass(frozen=True)
class ConnectPlan:
    """Accounts to try in turn until one connects. `wait`: polling REST and nothing is due yet."""

    attempts: tuple[Attempt, ...] = ()
    wait: bool = False


def _ready(backoffs: Mapping[int, Backoff], account: FeedAccount, now: float) -> bool:
    backoff = backoffs.get(account.id)
    return backoff is None or backoff.ready(now)


def failover_order(accounts: Iterable[FeedAccount]) -> list[FeedAccount]:
    return sorted(accounts, key=lambda a: (not a.preferred, a.latency_ms is None, a.latency_ms or 0, a.id))


def plan_connect(
    accounts: Iterable[FeedAccount],
    backoffs: Mapping[int, Backoff],
    *,
    current: FeedAccount | None,
    skip_current: bool,
    polling_rest: bool,
    reason: str,
    now: float,
) -> ConnectPlan:
    """The accounts to try, in order, when the feed has no live socket.

    `current` is the account the feed ran on (None at start and while polling REST), `skip_current`
    is set after a stall, `reason` is why the feed is connecting ("start", the drop reason).
    An attempt that fails puts its account in backoff before the next one is tried: the plan
    already counts on that, so a failed reconnect is not followed by the same account again
    unless every account is in backoff.
    """
    order = failover_order(accounts)
    if polling_rest and not any(_ready(backoffs, a, now) for a in order):
        return ConnectPlan(wait=True)
    attempts: list[Attempt] = []
    same = None
    if current is not None and not skip_current:
        same = next((a for a in order if a.id == current.id), None)
        if same is not None:
            attempts.append(Attempt(same, f"reconnect after {reason}", reconnect=True))
    candidates = [a for a in order if not (skip_current and current is not None and a.id == current.id)]
    ready = [a for a in candidates if (same is None or a.id != same.id) and _ready(backoffs, a, now)] or candidates[:1]
    why = f"failover after {reason}" if current is not None else reason
    attempts += [Attempt(a, why) for a in ready]
    return ConnectPlan(tuple(attempts))


def switch_back_to(
    accounts: Iterable[FeedAccount], backoffs: Mapping[int, Backoff], *, current: FeedAccount | None, now: float
) -> FeedAccount | None:
    """The preferred account to probe, if the feed runs on another one and its backoff has run out."""
    if current is None or current.preferred:
        return None
    preferred = next((a for a in accounts if a.preferred), None)
    if preferred is None or preferred.id == current.id or not _ready(backoffs, preferred, now):
        return None
    return preferred
