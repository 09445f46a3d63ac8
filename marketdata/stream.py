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
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import redis.asyncio as aioredis

from openalgo_client import protocol
from openalgo_client.rest import OpenAlgoClient
from openalgo_client.ws import BrokerSocket, ConnectError

from . import store

log = logging.getLogger("marketdata.feed")

SPOTS = {"NSE_INDEX:NIFTY": protocol.LTP, "NSE_INDEX:BANKNIFTY": protocol.LTP, "BSE_INDEX:SENSEX": protocol.LTP}
SPOT_OWNER = "feed:spots"
LOCK_TTL_MS = 15000
BACKOFF_BASE, BACKOFF_CAP = 2.0, 60.0
PROBE_TICK_TIMEOUT = 3.0
REST_INTERVAL = 1.0
REST_CHUNK = 50

_FENCED_WRITE = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
if #ARGV > 2 then redis.call('HSET', KEYS[2], unpack(ARGV, 3)) end
if ARGV[2] ~= '' then redis.call('SET', KEYS[3], ARGV[2]) end
return 1
"""
_RENEW = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0
"""


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
        rest_poll: Callable | None = None,
        clock: Callable[[], float] = time.time,
    ):
        self.redis = aioredis.Redis.from_url(redis_url, decode_responses=True)
        self.redis_bytes = aioredis.Redis.from_url(redis_url)  # channel-layer payloads are msgpack bytes
        self.load_accounts = load_accounts
        self.market_open = market_open
        self.layer = channel_layer
        self.stall_after = stall_after
        self.min_interval = min_interval
        self.rest_poll = rest_poll
        self.clock = clock
        self.token: str | None = None
        self.state = "waiting_for_lock"
        self.sock: BrokerSocket | None = None
        self.account: FeedAccount | None = None
        self.connected_at = 0.0
        self.subscribed: dict[str, int] = {}
        self.wanted: dict[str, int] = dict(SPOTS)
        self.dirty: dict[str, dict] = {}
        self.last_tick = 0.0
        self.ticks = 0
        self.bad_ticks = 0
        self.tick_window: deque[tuple[float, int]] = deque(maxlen=20)
        self.backoff: dict[int, Backoff] = {}
        self.drop_reason: str | None = None
        self.stalled_account: int | None = None
        self._last_pub: dict[str, float] = {}
        self._pending_pub: dict[str, dict] = {}
        self._pub_queue: asyncio.Queue | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._drain_scheduled = False
        self._market_open_cache = (0.0, True)
        self._accounts_cache: tuple[float, list[FeedAccount]] = (0.0, [])
        self._write = self.redis.register_script(_FENCED_WRITE)
        self._renew = self.redis.register_script(_RENEW)

    # ================================================================ lifecycle
    async def run(self, stop: asyncio.Event) -> None:
        self._loop = asyncio.get_running_loop()
        self._pub_queue = asyncio.Queue()
        while not stop.is_set():
            if not await self._acquire(stop):
                break
            lost = asyncio.Event()
            await self._event("lock_acquired", reason=f"fencing token {self.token}")
            await asyncio.to_thread(store.interest_set, SPOT_OWNER, SPOTS)
            tasks = [
                asyncio.create_task(c)
                for c in (
                    self._supervise(lost),
                    self._interest_loop(lost),
                    self._flush_loop(lost),
                    self._renew_loop(lost),
                    self._publisher(),
                    self._rest_loop(lost),
                )
            ]
            waiter = asyncio.create_task(stop.wait())
            lost_waiter = asyncio.create_task(lost.wait())
            await asyncio.wait([waiter, lost_waiter], return_when=asyncio.FIRST_COMPLETED)
            for t in (*tasks, waiter, lost_waiter):
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            self._close_socket()
            if stop.is_set():
                await self.redis.eval(
                    "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0",
                    1,
                    store.LOCK,
                    self.token,
                )
            else:
                log.error("feed: lost the lock (another feed holds it now); waiting to take it back")
                self.state = "waiting_for_lock"
        await self.redis.aclose()
        await self.redis_bytes.aclose()

    async def _acquire(self, stop: asyncio.Event) -> bool:
        """Wait until this process holds the feed lock. A second feed waits here, connected to nothing."""
        self.state = "waiting_for_lock"
        while not stop.is_set():
            token = str(await self.redis.incr(store.FENCE))
            if await self.redis.set(store.LOCK, token, nx=True, px=LOCK_TTL_MS):
                self.token = token
                self.state = "connecting"
                return True
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), 1.0)
        return False

    async def _renew_loop(self, lost: asyncio.Event) -> None:
        while True:
            await asyncio.sleep(LOCK_TTL_MS / 5000)
            if not await self._renew(keys=[store.LOCK], args=[self.token, LOCK_TTL_MS]):
                lost.set()
                return

    # ================================================================ connection supervision
    async def _supervise(self, lost: asyncio.Event) -> None:
        while True:
            now = time.monotonic()
            if self.sock is None or self.sock.closed:
                await self._establish()
            elif await self._is_stalled(now):
                self.stalled_account = self.account.id
                self._backoff(self.account.id).fail(now)
                await self._drop(f"stall: no tick for {self.stall_after:g} s")
                await self._establish(skip_same=True)
            elif self.account is not None and not self.account.preferred:
                await self._maybe_switch_back(now)
            await asyncio.sleep(0.05)

    async def _is_stalled(self, now: float) -> bool:
        if not self.subscribed:
            return False
        since = max(self.last_tick, self.connected_at)
        if now - since < self.stall_after:
            return False
        return await self._market_is_open()

    async def _market_is_open(self) -> bool:
        at, value = self._market_open_cache
        if time.monotonic() - at > 30:
            value = await self.market_open()
            self._market_open_cache = (time.monotonic(), value)
        return value

    def _backoff(self, account_id: int) -> Backoff:
        return self.backoff.setdefault(account_id, Backoff())

    async def _accounts(self) -> list[FeedAccount]:
        """The accounts the feed may use, re-read from the database at most every 2 s."""
        at, cached = self._accounts_cache
        if time.monotonic() - at > 2.0:
            cached = await self.load_accounts()
            self._accounts_cache = (time.monotonic(), cached)
        return cached

    async def _establish(self, skip_same: bool = False) -> None:
        reason = self.drop_reason or "start"
        accounts = await self._accounts()
        if not accounts:
            if self.state != "no_accounts":
                self.state = "no_accounts"
                await self._event("no_accounts", reason="no active account with a readable key")
            await asyncio.sleep(1.0)
            return
        now = time.monotonic()
        previous = self.account
        order = sorted(accounts, key=lambda a: (not a.preferred, a.latency_ms is None, a.latency_ms or 0, a.id))
        if self.state == "rest" and not any(self._backoff(a.id).ready(now) for a in order):
            await asyncio.sleep(0.25)  # polling REST; no WebSocket retry is due yet
            return
        if previous is not None and not skip_same:
            same = next((a for a in order if a.id == previous.id), None)
            if same is not None and await self._connect(same, reason=f"reconnect after {reason}"):
                return
            if same is not None:
                self._backoff(same.id).fail(now)
        candidates = [a for a in order if not (skip_same and previous is not None and a.id == previous.id)]
        # Accounts in backoff wait their turn, unless every account is in backoff.
        ready = [a for a in candidates if self._backoff(a.id).ready(now)] or candidates[:1]
        for acc in ready:
            if await self._connect(acc, reason=f"failover after {reason}" if previous else reason):
                return
            self._backoff(acc.id).fail(time.monotonic())
        if self.state != "rest":
            self.state = "rest"
            self.account = None
            await self._event("rest_polling", reason=f"no WebSocket works ({reason}); polling REST")
        self.drop_reason = self.drop_reason or "no WebSocket"
        await asyncio.sleep(0.5)

    async def _connect(self, acc: FeedAccount, *, reason: str) -> bool:
        sock = acc.socket(
            on_frames=self._frames_arrived,
            on_closed=lambda why: self._socket_closed(why, sock),
        )
        try:
            await asyncio.to_thread(sock.connect)
        except ConnectError as e:
            await self._event("connect_failed", account=acc, reason=str(e))
            return False
        self._close_socket()
        self.sock, self.account = sock, acc
        self.connected_at = time.monotonic()
        self.subscribed = {}
        self.drop_reason = None
        self.state = "ws"
        self._backoff(acc.id).failures = 0
        self._backoff(acc.id).next_try = 0
        self._resubscribe()
        await self._event("connected", account=acc, reason=reason)
        return True

    async def _maybe_switch_back(self, now: float) -> None:
        accounts = await self._accounts()
        preferred = next((a for a in accounts if a.preferred), None)
        if preferred is None or preferred.id == self.account.id or not self._backoff(preferred.id).ready(now):
            return
        if await self._probe(preferred):
            await self._connect(preferred, reason=f"{preferred.name} is healthy again")
        else:
            self._backoff(preferred.id).fail(time.monotonic())

    async def _probe(self, acc: FeedAccount) -> bool:
        """Healthy means ticks arrive, not just that the socket opens (a stalled feed opens fine)."""
        got = asyncio.Event()
        loop = self._loop

        def arrived() -> None:
            loop.call_soon_threadsafe(got.set)

        probe = acc.socket(on_frames=arrived, on_closed=lambda why: None)
        try:
            await asyncio.to_thread(probe.connect)
            probe.send(protocol.subscribe(list(SPOTS), protocol.LTP))
            deadline = time.monotonic() + PROBE_TICK_TIMEOUT
            while time.monotonic() < deadline:
                try:
                    await asyncio.wait_for(got.wait(), deadline - time.monotonic())
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

    def _socket_closed(self, why: str, sock: BrokerSocket | None = None) -> None:
        loop = self._loop
        if loop is None or loop.is_closed():
            return

        def note() -> None:
            if sock is None or sock is self.sock:
                self.drop_reason = why
                asyncio.ensure_future(self._event("dropped", account=self.account, reason=why))

        loop.call_soon_threadsafe(note)

    # ================================================================ subscriptions
    async def _interest_loop(self, lost: asyncio.Event) -> None:
        while True:
            self.wanted = await asyncio.to_thread(store.wanted, now=self.clock())
            self._resubscribe()
            await asyncio.sleep(0.5)

    def _resubscribe(self) -> None:
        sock = self.sock
        if sock is None or sock.closed:
            return
        want, have = self.wanted, self.subscribed
        gone = [k for k, m in have.items() if want.get(k) != m]
        by_mode: dict[int, list[str]] = {}
        for k in gone:
            by_mode.setdefault(have[k], []).append(k)
        for mode, keys in by_mode.items():
            sock.send(protocol.unsubscribe(keys, mode))
        new: dict[int, list[str]] = {}
        for k, m in want.items():
            if have.get(k) != m:
                new.setdefault(m, []).append(k)
        for mode, keys in new.items():
            for i in range(0, len(keys), 500):
                sock.send(protocol.subscribe(keys[i : i + 500], mode))
        self.subscribed = dict(want)

    # ================================================================ ticks
    def _frames_arrived(self) -> None:
        loop = self._loop
        if loop is not None and not self._drain_scheduled:
            self._drain_scheduled = True
            loop.call_soon_threadsafe(self._drain)

    def _drain(self) -> None:
        self._drain_scheduled = False
        sock = self.sock
        if sock is None:
            return
        frames = sock.frames
        now_ms = int(self.clock() * 1000)
        n = 0
        while frames:
            f = frames.popleft()
            if isinstance(f, protocol.Tick):
                n += 1
                rec = {"ltp": f.ltp, "ts": now_ms, "src": "ws", "tick_ts": f.ts_ms, **protocol.quote_fields(f.data)}
                self._ingest(f.key, rec)
            elif isinstance(f, protocol.BadTick):
                self.bad_ticks += 1  # 0 / NaN / negative never overwrite a good price
            elif isinstance(f, protocol.ErrorFrame):
                log.warning("feed: broker error frame %s: %s", f.code, f.message)
        if n:
            self.last_tick = time.monotonic()
            self.ticks += n

    def _ingest(self, key: str, rec: dict) -> None:
        self.dirty[key] = rec
        now = time.monotonic()
        last = self._last_pub.get(key, 0.0)
        if key in self._pending_pub:
            self._pending_pub[key] = rec  # a send is already scheduled: it will carry the newest
            return
        # A tick is passed on at once if the last send is at least 3/4 of the interval old: with a
        # strict gap, ticks arriving at the same rate as the gap queue up behind their own jitter
        # (measured: p50 +180 ms at 5 ticks/s), while 3/4 still caps a busy symbol near 1/interval.
        wait = self.min_interval * 0.75 - (now - last)
        if wait <= 0:
            self._last_pub[key] = now
            self._pub_queue.put_nowait((key, rec))
        else:
            self._pending_pub[key] = rec
            self._loop.call_later(wait, self._release, key)

    def _release(self, key: str) -> None:
        rec = self._pending_pub.pop(key, None)
        if rec is not None:
            self._last_pub[key] = time.monotonic()
            self._pub_queue.put_nowait((key, rec))

    async def _publisher(self) -> None:
        """Everything queued since the last wake-up goes out in one Redis pipeline: a PUBLISH per
        message, in the channel layer's own wire format (see store.group_publish_args)."""
        queue = self._pub_queue
        while True:
            batch = [await queue.get()]
            while not queue.empty():
                batch.append(queue.get_nowait())
            if self.layer is None:
                continue
            try:
                async with self.redis_bytes.pipeline(transaction=False) as p:
                    for key, rec in batch:
                        p.publish(
                            *store.group_publish_args(self.layer, key, {"type": "price.update", "key": key, **rec})
                        )
                    await p.execute()
            except Exception:  # a Redis hiccup must not kill the feed
                log.exception("feed: publishing %d prices failed", len(batch))

    # ================================================================ REST fallback
    async def _rest_loop(self, lost: asyncio.Event) -> None:
        turn = 0
        while True:
            await asyncio.sleep(REST_INTERVAL)
            if self.state != "rest" or self.rest_poll is None or not await self._market_is_open():
                continue  # no REST polling of brokers outside market hours
            accounts = await self._accounts()
            keys = list(self.wanted)
            if not accounts or not keys:
                continue
            chunks = [keys[i : i + REST_CHUNK] for i in range(0, len(keys), REST_CHUNK)]
            results = await asyncio.gather(
                *(
                    asyncio.to_thread(self.rest_poll, accounts[(turn + i) % len(accounts)], chunk)
                    for i, chunk in enumerate(chunks)
                ),
                return_exceptions=True,
            )
            turn += 1
            now_ms = int(self.clock() * 1000)
            for res in results:
                if isinstance(res, BaseException):
                    continue
                for key, data in res.items():
                    ltp = protocol.valid_price(data.get("ltp"))
                    if ltp is None:
                        self.bad_ticks += 1
                        continue
                    fields = {
                        k: data[k]
                        for k in ("open", "high", "low", "prev_close", "volume", "oi", "bid", "ask")
                        if protocol.number(data.get(k)) is not None
                    }
                    self._ingest(key, {"ltp": ltp, "ts": now_ms, "src": "rest", **fields})
                    self.last_tick = time.monotonic()

    # ================================================================ persistence
    async def _flush_loop(self, lost: asyncio.Event) -> None:
        last_status = 0.0
        while True:
            await asyncio.sleep(0.1)
            now = time.monotonic()
            status = ""
            if now - last_status >= 1.0:
                status = json.dumps(self.status())
                last_status = now
            if not self.dirty and not status:
                continue
            batch, self.dirty = self.dirty, {}
            args: list = [self.token, status]
            for k, rec in batch.items():
                args += [k, json.dumps(rec, separators=(",", ":"))]
            if not await self._write(keys=[store.LOCK, store.PRICES, store.STATUS], args=args):
                log.error("feed: fenced write refused: this process no longer holds the feed lock")
                lost.set()
                return

    def status(self) -> dict:
        now = time.monotonic()
        self.tick_window.append((now, self.ticks))
        t0, n0 = self.tick_window[0]
        return {
            "state": self.state,
            "account": self.account.name if self.account else None,
            "account_id": self.account.id if self.account else None,
            "ws_url": self.account.ws_url if self.account else None,
            "subscribed": sorted(self.subscribed),
            "wanted": len(self.wanted),
            "ticks_per_s": round((self.ticks - n0) / (now - t0), 1) if now > t0 else 0.0,
            "ticks_total": self.ticks,
            "bad_ticks": self.bad_ticks,
            "last_tick_age_s": round(now - self.last_tick, 1) if self.last_tick else None,
            "pid": os.getpid(),
            "token": self.token,
            "updated": int(self.clock() * 1000),
        }

    async def _event(self, kind: str, *, account: FeedAccount | None = None, reason: str = "") -> None:
        entry = {
            "ts": int(self.clock() * 1000),
            "kind": kind,
            "account": account.name if account else None,
            "reason": reason,
        }
        log.warning("feed: %s %s: %s", kind, entry["account"] or "", reason)
        async with self.redis.pipeline() as p:
            p.lpush(store.EVENTS, json.dumps(entry))
            p.ltrim(store.EVENTS, 0, 199)
            await p.execute()
