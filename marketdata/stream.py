"""The feed engine: exactly one broker WebSocket for the whole platform, with failover.

Runs in the `run_feed` process (asyncio). It holds a Redis lock (fenced: every price write
checks the token, so a feed that lost its lock cannot overwrite fresher prices), subscribes
exactly the union of registered interest, validates every tick (> 0, finite), keeps the newest
price per instrument in Redis and fans it out to Channels groups, at most one message per
instrument per FEED_MIN_INTERVAL_MS, always the newest.

Failover: on a drop, one immediate reconnect to the same account; if that fails, at once the
next healthy account (the preferred one first, then by latency) with the subscriptions
replayed, while failed accounts are retried with exponential backoff (2 s base, 60 s cap);
the preferred account gets the feed back only after a probe connection receives ticks. A
stall (no tick for FEED_STALL_SECONDS while subscribed and the market is open) counts as a
drop. When no WebSocket works, prices come from REST `multiquotes` until one recovers.

The engine owns the connection (which account, which socket, what is subscribed) and the
loops; its parts live in `marketdata.feed`: the fenced lock, the publisher, the REST poller,
and the pure decisions of which account to use (`feed.choice`). Every reading of time goes
through the injected clock. Each loop repeats a step function (`supervise_step`,
`interest_step`, `flush_step`, `rest_step`; `drain` runs when frames arrive), and tests call
those steps directly with a fake clock and fake sockets.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
from collections.abc import Awaitable, Callable

import redis.asyncio as aioredis

from openalgo_client import protocol
from openalgo_client.ws import BrokerSocket, ConnectError

from . import store
from .feed import choice
from .feed.choice import Backoff, FeedAccount
from .feed.clock import Clock, SystemClock
from .feed.lock import RENEW_EVERY, FencedLock
from .feed.publisher import Publisher
from .feed.restpoll import REST_INTERVAL, RestPoll, RestPoller
from .feed.state import FeedState, TickCounts
from .feed.subscriptions import subscription_messages

log = logging.getLogger("marketdata.feed")

SPOTS = {"NSE_INDEX:NIFTY": protocol.LTP, "NSE_INDEX:BANKNIFTY": protocol.LTP, "BSE_INDEX:SENSEX": protocol.LTP}
SPOT_OWNER = "feed:spots"
PROBE_TICK_TIMEOUT = 3.0
# Loop periods, seconds.
SUPERVISE_EVERY = 0.05
INTEREST_EVERY = 0.5
FLUSH_EVERY = 0.1
STATUS_EVERY = 1.0
ACCOUNTS_EVERY = 2.0  # the account list is re-read from the database at most this often
MARKET_OPEN_EVERY = 30.0
# Extra supervisor pauses when no socket came up, seconds.
NO_ACCOUNTS_PAUSE = 1.0
NOTHING_DUE_PAUSE = 0.25  # polling REST; no WebSocket retry is due yet
ALL_FAILED_PAUSE = 0.5


class _Refreshed[T]:
    """A value fetched again at most every `seconds` of the clock."""

    def __init__(self, fetch: Callable[[], Awaitable[T]], seconds: float, clock: Clock) -> None:
        self._fetch = fetch
        self._seconds = seconds
        self._clock = clock
        self._at: float | None = None
        self._value: T

    async def get(self) -> T:
        if self._at is None or self._clock.monotonic() - self._at > self._seconds:
            self._value = await self._fetch()
            self._at = self._clock.monotonic()
        return self._value


class FeedEngine:
    def __init__(
        self,
        *,
        redis_url: str,
        load_accounts: Callable[[], Awaitable[list[FeedAccount]]],
        market_open: Callable[[], Awaitable[bool]],
        channel_layer=None,
        stall_after: float = 10.0,
        min_interval: float = 0.2,
        rest_poll: RestPoll | None = None,
        clock: Clock | None = None,
        probe_timeout: float = PROBE_TICK_TIMEOUT,
    ):
        self.clock = clock or SystemClock()
        self.redis = aioredis.Redis.from_url(redis_url, decode_responses=True)
        self._redis_bytes = aioredis.Redis.from_url(redis_url)  # channel-layer payloads are msgpack bytes
        self.lock = FencedLock(self.redis)
        self.publisher = Publisher(
            lock=self.lock,
            redis_bytes=self._redis_bytes,
            layer=channel_layer,
            clock=self.clock,
            min_interval=min_interval,
        )
        self.rest = RestPoller(rest_poll, clock=self.clock) if rest_poll is not None else None
        self._accounts = _Refreshed(load_accounts, ACCOUNTS_EVERY, self.clock)
        self._market_open = _Refreshed(market_open, MARKET_OPEN_EVERY, self.clock)
        self.stall_after = stall_after
        self.probe_timeout = probe_timeout
        self.state = FeedState.WAITING_FOR_LOCK
        self.sock: BrokerSocket | None = None
        self.account: FeedAccount | None = None
        self.connected_at = 0.0
        self.drop_reason: str | None = None
        self.subscribed: dict[str, int] = {}
        self.wanted: dict[str, int] = dict(SPOTS)
        self.backoff: dict[int, Backoff] = {}
        self.ticks = TickCounts()
        self._drain_scheduled = False
        self._status_at: float | None = None

    # ================================================================ lifecycle
    async def run(self, stop: asyncio.Event) -> None:
        try:
            while not stop.is_set():
                self.state = FeedState.WAITING_FOR_LOCK
                if not await self.lock.acquire(stop):  # a second feed waits here, connected to nothing
                    break
                self.state = FeedState.CONNECTING
                await self._hold(stop)
        finally:
            await self.redis.aclose()
            await self._redis_bytes.aclose()

    async def _hold(self, stop: asyncio.Event) -> None:
        """Run the feed while this process holds the lock: until `stop`, or until the lock is lost."""
        lost = asyncio.Event()
        self._status_at = None
        await self._event("lock_acquired", reason=f"fencing token {self.lock.token}")
        await asyncio.to_thread(store.interest_set, SPOT_OWNER, SPOTS)
        loops = (
            self._supervise_loop(),
            self._interest_loop(),
            self._flush_loop(lost),
            self._renew_loop(lost),
            self.publisher.run(),
            self._rest_loop(),
        )
        tasks = [asyncio.create_task(c) for c in loops]
        waiters = [asyncio.create_task(stop.wait()), asyncio.create_task(lost.wait())]
        await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
        for t in (*tasks, *waiters):
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._close_socket()
        if stop.is_set():
            await self.lock.release()
        else:
            log.error("feed: lost the lock (another feed holds it now); waiting to take it back")

    async def _supervise_loop(self) -> None:
        while True:
            await asyncio.sleep(await self.supervise_step())

    async def _interest_loop(self) -> None:
        while True:
            await self.interest_step()
            await asyncio.sleep(INTEREST_EVERY)

    async def _flush_loop(self, lost: asyncio.Event) -> None:
        while True:
            await asyncio.sleep(FLUSH_EVERY)
            if not await self.flush_step():
                lost.set()
                return

    async def _renew_loop(self, lost: asyncio.Event) -> None:
        while True:
            await asyncio.sleep(RENEW_EVERY)
            if not await self.lock.renew():
                lost.set()
                return

    async def _rest_loop(self) -> None:
        while True:
            await asyncio.sleep(REST_INTERVAL)
            await self.rest_step()

    # ================================================================ connection supervision
    async def supervise_step(self) -> float:
        """One look at the connection: connect if there is no socket, drop a stalled one, hand the
        feed back to the preferred account once it is healthy. Returns seconds until the next look."""
        now = self.clock.monotonic()
        if self.sock is None or self.sock.closed:
            return SUPERVISE_EVERY + await self._establish()
        if await self._is_stalled(now):
            self._backoff(self.account.id).fail(now)
            await self._drop(f"stall: no tick for {self.stall_after:g} s")
            return SUPERVISE_EVERY + await self._establish(skip_current=True)
        if self.account is not None and not self.account.preferred:
            target = choice.switch_back_to(await self._accounts.get(), self.backoff, current=self.account, now=now)
            if target is not None:
                await self._switch_back(target)
        return SUPERVISE_EVERY

    async def _is_stalled(self, now: float) -> bool:
        if not self.subscribed:
            return False
        last = self.ticks.last_at
        since = self.connected_at if last is None else max(last, self.connected_at)
        if now - since < self.stall_after:
            return False
        return await self._market_open.get()

    def _backoff(self, account_id: int) -> Backoff:
        return self.backoff.setdefault(account_id, Backoff())

    async def _establish(self, *, skip_current: bool = False) -> float:
        """Connect to the first account of the plan that works, else poll REST. Returns the extra
        pause before the supervisor looks again."""
        reason = self.drop_reason or "start"
        accounts = await self._accounts.get()
        if not accounts:
            if self.state != FeedState.NO_ACCOUNTS:
                self.state = FeedState.NO_ACCOUNTS
                await self._event("no_accounts", reason="no active account with a readable key")
            return NO_ACCOUNTS_PAUSE
        now = self.clock.monotonic()
        plan = choice.plan_connect(
            accounts,
            self.backoff,
            current=self.account,
            skip_current=skip_current,
            polling_rest=self.state == FeedState.REST,
            reason=reason,
            now=now,
        )
        if plan.wait:
            return NOTHING_DUE_PAUSE
        for attempt in plan.attempts:
            if await self._connect(attempt.account, reason=attempt.reason):
                return 0.0
            # The immediate reconnect's backoff counts from the drop, a failover's from its failure.
            self._backoff(attempt.account.id).fail(now if attempt.reconnect else self.clock.monotonic())
        if self.state != FeedState.REST:
            self.state = FeedState.REST
            self.account = None
            await self._event("rest_polling", reason=f"no WebSocket works ({reason}); polling REST")
        self.drop_reason = self.drop_reason or "no WebSocket"
        return ALL_FAILED_PAUSE

    async def _connect(self, acc: FeedAccount, *, reason: str) -> bool:
        loop = asyncio.get_running_loop()
        sock = acc.socket(
            on_frames=lambda: self._frames_arrived(loop),
            on_closed=lambda why: self._closed_by_broker(loop, sock, why),
        )
        try:
            await asyncio.to_thread(sock.connect)
        except ConnectError as e:
            await self._event("connect_failed", account=acc, reason=str(e))
            return False
        self._close_socket()
        self.sock, self.account = sock, acc
        self.connected_at = self.clock.monotonic()
        self.subscribed = {}
        self.drop_reason = None
        self.state = FeedState.WS
        self._backoff(acc.id).reset()
        self._resubscribe()
        await self._event("connected", account=acc, reason=reason)
        return True

    async def _switch_back(self, preferred: FeedAccount) -> None:
        if await self._probe(preferred):
            await self._connect(preferred, reason=f"{preferred.name} is healthy again")
        else:
            self._backoff(preferred.id).fail(self.clock.monotonic())

    async def _probe(self, acc: FeedAccount) -> bool:
        """Healthy means ticks arrive, not just that the socket opens (a stalled feed opens fine)."""
        loop = asyncio.get_running_loop()
        got = asyncio.Event()
        probe = acc.socket(on_frames=lambda: loop.call_soon_threadsafe(got.set), on_closed=lambda why: None)
        try:
            await asyncio.to_thread(probe.connect)
            probe.send(protocol.subscribe(list(SPOTS), protocol.LTP))
            deadline = self.clock.monotonic() + self.probe_timeout
            while self.clock.monotonic() < deadline:
                try:
                    await asyncio.wait_for(got.wait(), deadline - self.clock.monotonic())
                except TimeoutError:
                    break
                got.clear()
                while probe.frames:
                    if isinstance(probe.frames.popleft(), protocol.Tick):
                        return True
            return False
        except ConnectError:
            return False
        finally:
            probe.close()

    async def _drop(self, reason: str) -> None:
        await self._event("dropped", account=self.account, reason=reason)
        self.drop_reason = reason
        self._close_socket()

    def _close_socket(self) -> None:
        if self.sock is not None:
            self.sock.close()
            self.sock = None
        self.subscribed = {}

    def _closed_by_broker(self, loop: asyncio.AbstractEventLoop, sock: BrokerSocket, why: str) -> None:
        """`on_closed`, called on the socket's reader thread."""
        if not loop.is_closed():
            loop.call_soon_threadsafe(self._socket_closed, sock, why)

    def _socket_closed(self, sock: BrokerSocket, why: str) -> None:
        if sock is self.sock:  # not a socket already replaced or closed by us
            self.drop_reason = why
            asyncio.ensure_future(self._event("dropped", account=self.account, reason=why))

    # ================================================================ subscriptions
    async def interest_step(self) -> None:
        """Follow the registered interest (the union of every live owner's keys)."""
        self.wanted = await asyncio.to_thread(store.wanted, now=self.clock.wall())
        self._resubscribe()

    def _resubscribe(self) -> None:
        sock = self.sock
        if sock is None or sock.closed:
            return
        for message in subscription_messages(self.wanted, self.subscribed):
            sock.send(message)
        self.subscribed = dict(self.wanted)

    # ================================================================ ticks
    def _frames_arrived(self, loop: asyncio.AbstractEventLoop) -> None:
        """`on_frames`, called on the socket's reader thread: one drain per burst of frames."""
        if not self._drain_scheduled:
            self._drain_scheduled = True
            loop.call_soon_threadsafe(self.drain)

    def drain(self) -> None:
        """Every queued frame of the live socket: good ticks become prices, bad ones are counted."""
        self._drain_scheduled = False
        sock = self.sock
        if sock is None:
            return
        frames = sock.frames
        now_ms = int(self.clock.wall() * 1000)
        n = 0
        while frames:
            f = frames.popleft()
            if isinstance(f, protocol.Tick):
                n += 1
                rec = {"ltp": f.ltp, "ts": now_ms, "src": "ws", "tick_ts": f.ts_ms, **protocol.quote_fields(f.data)}
                self.publisher.ingest(f.key, rec)
            elif isinstance(f, protocol.BadTick):
                self.ticks.bad += 1  # 0 / NaN / negative never overwrite a good price
            elif isinstance(f, protocol.ErrorFrame):
                log.warning("feed: broker error frame %s: %s", f.code, f.message)
        if n:
            self.ticks.last_at = self.clock.monotonic()
            self.ticks.total += n

    # ================================================================ REST fallback
    async def rest_step(self) -> None:
        """One REST round, only while no WebSocket works and the market is open."""
        if self.state != FeedState.REST or self.rest is None or not await self._market_open.get():
            return  # no REST polling of brokers outside market hours
        accounts = await self._accounts.get()
        keys = list(self.wanted)
        if not accounts or not keys:
            return
        batch = await self.rest.poll_once(accounts, keys)
        self.ticks.bad += batch.bad
        for key, record in batch.records:
            self.publisher.ingest(key, record)
        if batch.records:
            self.ticks.last_at = self.clock.monotonic()

    # ================================================================ persistence
    async def flush_step(self) -> bool:
        """Changed prices, and once a second the status, in one fenced write. False: the lock is gone."""
        now = self.clock.monotonic()
        status = ""
        if self._status_at is None or now - self._status_at >= STATUS_EVERY:
            status = json.dumps(self.status())
            self._status_at = now
        if await self.publisher.flush(status):
            return True
        log.error("feed: fenced write refused: this process no longer holds the feed lock")
        return False

    def status(self) -> dict:
        now = self.clock.monotonic()
        acc = self.account
        last = self.ticks.last_at
        return {
            "state": self.state.value,
            "account": acc.name if acc else None,
            "account_id": acc.id if acc else None,
            "ws_url": acc.ws_url if acc else None,
            "subscribed": sorted(self.subscribed),
            "wanted": len(self.wanted),
            "ticks_per_s": self.ticks.rate(now),
            "ticks_total": self.ticks.total,
            "bad_ticks": self.ticks.bad,
            "last_tick_age_s": round(now - last, 1) if last is not None else None,
            "pid": os.getpid(),
            "token": self.lock.token,
            "updated": int(self.clock.wall() * 1000),
        }

    async def _event(self, kind: str, *, account: FeedAccount | None = None, reason: str = "") -> None:
        entry = {
            "ts": int(self.clock.wall() * 1000),
            "kind": kind,
            "account": account.name if account else None,
            "account_id": account.id if account else None,
            "reason": reason,
        }
        log.warning("feed: %s %s: %s", kind, entry["account"] or "", reason)
        async with self.redis.pipeline() as p:
            p.lpush(store.EVENTS, json.dumps(entry))
            p.ltrim(store.EVENTS, 0, 199)
            await p.execute()
