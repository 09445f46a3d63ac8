"""The feed engine on fake sockets and a fake clock, driven through its step functions.

Redis is the real local one (the engine's outside world): prices, status and events land there
and are read back through `marketdata.store`. Nothing waits on wall time except the run() wiring
test and one probe that must time out (0.1 s).
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from collections import deque

import pytest
import redis.asyncio as aioredis
from django.conf import settings

from marketdata import store
from marketdata.feed import choice
from marketdata.feed.choice import Backoff, FeedAccount
from marketdata.feed.lock import FencedLock
from marketdata.feed.publisher import Publisher
from marketdata.feed.state import FeedState
from marketdata.feed.subscriptions import subscription_messages
from marketdata.stream import SPOT_OWNER, SPOTS, SUPERVISE_EVERY, FeedEngine
from openalgo_client import protocol
from openalgo_client.ws import ConnectError

from .conftest import clear_marketdata_keys

NIFTY = "NSE_INDEX:NIFTY"
STALL = 10.0


class FakeClock:
    """Monotonic and wall time that move only when the test says so (wall starts at the real now,
    so interest expiry and price ages line up with what other code reads)."""

    def __init__(self) -> None:
        self.t = 1000.0
        self._wall0 = time.time()

    def monotonic(self) -> float:
        return self.t

    def wall(self) -> float:
        return self._wall0 + self.t - 1000.0

    def advance(self, seconds: float) -> None:
        self.t += seconds


def tick(key: str, ltp) -> str:
    exchange, _, symbol = key.partition(":")
    return json.dumps({"type": "market_data", "symbol": symbol, "exchange": exchange, "mode": 1, "data": {"ltp": ltp}})


class FakeBroker:
    """The broker side of one account: whether it accepts connections and whether it sends ticks."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.up = True
        self.ticking = True
        self.price = 100.0
        self.sockets: list[FakeSocket] = []

    def socket(self, *, on_frames, on_closed, connect_timeout: float = 3.0) -> FakeSocket:
        sock = FakeSocket(self, on_frames, on_closed)
        self.sockets.append(sock)
        return sock

    @property
    def live(self) -> FakeSocket | None:
        return next((s for s in reversed(self.sockets) if s.connected and not s.closed), None)


class FakeSocket:
    """The BrokerSocket interface: connect(), send(), close(), `frames`, `closed`, and the callbacks."""

    def __init__(self, broker: FakeBroker, on_frames, on_closed) -> None:
        self.broker = broker
        self._on_frames = on_frames
        self._on_closed = on_closed
        self.frames: deque = deque()
        self.closed = False
        self.connected = False
        self.sent: list[dict] = []

    def connect(self) -> dict:
        if not self.broker.up:
            raise ConnectError(f"cannot connect to {self.broker.name}: ConnectionRefusedError")
        self.connected = True
        return {"type": "auth", "status": "success"}

    def send(self, text: str) -> bool:
        if self.closed or not self.connected:
            return False
        msg = json.loads(text)
        self.sent.append(msg)
        if msg["action"] == "subscribe" and self.broker.ticking:
            self.push(*(tick(f"{s['exchange']}:{s['symbol']}", self.broker.price) for s in msg["symbols"]))
        return True

    def close(self) -> None:
        self.closed = True

    # ---- what the broker does
    def push(self, *texts: str) -> None:
        for text in texts:
            self.frames.append(protocol.parse(text))
            self._on_frames()

    def drop(self, why: str = "closed by the server") -> None:
        self.closed = True
        self._on_closed(why)

    def subscribed_keys(self) -> set[str]:
        keys: set[str] = set()
        for msg in self.sent:
            names = {f"{s['exchange']}:{s['symbol']}" for s in msg["symbols"]}
            keys = keys | names if msg["action"] == "subscribe" else keys - names
        return keys


class Rig:
    """Three fake brokers (paper-01 preferred), their accounts, a market switch, REST quotes, the engine."""

    def __init__(self, *, fake_clock: bool = True) -> None:
        self.clock = FakeClock()
        self.brokers = [FakeBroker(f"paper-0{i}") for i in (1, 2, 3)]
        # The backups' latencies put paper-03 before paper-02: failover follows latency, not id.
        latency = {1: 40, 2: 30, 3: 20}
        self.accounts = [
            FeedAccount(
                i,
                b.name,
                f"ws://{b.name}",
                f"http://{b.name}",
                socket=b.socket,
                rest=lambda: None,
                preferred=i == 1,
                latency_ms=latency[i],
            )
            for i, b in enumerate(self.brokers, start=1)
        ]
        self.market_is_open = True
        self.quotes: dict[str, dict] = {}
        self.rest_calls: list[tuple[int, list[str]]] = []
        self.engine = FeedEngine(
            redis_url=settings.REDIS_URL,
            load_accounts=self._load_accounts,
            market_open=self._market_open,
            stall_after=STALL,
            rest_poll=self._rest_poll,
            clock=self.clock if fake_clock else None,
            probe_timeout=0.1,
        )

    async def _load_accounts(self) -> list[FeedAccount]:
        return list(self.accounts)

    async def _market_open(self) -> bool:
        return self.market_is_open

    def _rest_poll(self, account: FeedAccount, keys: list[str]) -> dict[str, dict]:
        self.rest_calls.append((account.id, keys))
        return {k: self.quotes[k] for k in keys if k in self.quotes}

    @property
    def primary(self) -> FakeBroker:
        return self.brokers[0]

    def kinds(self) -> list[tuple[str, str | None, str]]:
        """Feed events, oldest first: (kind, account, reason)."""
        return [(e["kind"], e["account"], e["reason"]) for e in reversed(store.feed_events(200))]

    def last(self, kind: str) -> tuple[str, str | None, str]:
        return next(e for e in reversed(self.kinds()) if e[0] == kind)


async def settle() -> None:
    """Let callbacks the sockets handed to the loop (drains, drop notes) run: yields, no waiting."""
    for _ in range(3):
        await asyncio.sleep(0)


@pytest.fixture
async def rig():
    clear_marketdata_keys()
    r = Rig()
    assert await r.engine.lock.try_acquire()
    r.engine.state = FeedState.CONNECTING
    yield r
    pending = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
    if pending:  # "dropped" events written in the background
        await asyncio.wait(pending, timeout=1)
    r.engine._close_socket()
    await r.engine.redis.aclose()
    await r.engine._redis_bytes.aclose()
    clear_marketdata_keys()


async def connected(rig: Rig) -> FakeSocket:
    assert await rig.engine.supervise_step() == SUPERVISE_EVERY
    await settle()
    assert rig.engine.state == FeedState.WS
    sock = rig.brokers[rig.engine.account.id - 1].live
    assert sock is not None
    return sock


# ==================================================================== engine
async def test_starts_on_the_preferred_account_and_subscribes_the_spots(rig):
    sock = await connected(rig)
    assert rig.engine.account.name == "paper-01"
    assert sock.subscribed_keys() == set(SPOTS)
    assert rig.engine.ticks.total == 3  # the broker answered the subscribe with a tick each
    assert await rig.engine.flush_step()
    assert store.price_get(NIFTY)["ltp"] == 100.0
    assert store.price_get(NIFTY)["src"] == "ws"
    status = store.feed_status()
    assert status["state"] == "ws" and status["account_id"] == 1 and status["subscribed"] == sorted(SPOTS)
    assert ("connected", "paper-01", "start") in rig.kinds()


async def test_a_closed_socket_is_reconnected_to_the_same_account(rig):
    first = await connected(rig)
    first.drop("closed by the server")
    await settle()
    assert rig.engine.drop_reason == "closed by the server"
    await rig.engine.supervise_step()
    await settle()
    again = rig.primary.live
    assert again is not None and again is not first
    assert rig.engine.account.id == 1
    assert again.subscribed_keys() == set(SPOTS)  # subscriptions replayed
    assert rig.last("connected") == ("connected", "paper-01", "reconnect after closed by the server")
    assert rig.engine.backoff[1] == Backoff()
    assert all(not b.sockets for b in rig.brokers[1:])


async def test_a_dead_primary_fails_over_to_the_fastest_backup(rig):
    first = await connected(rig)
    rig.primary.up = False
    first.drop("connection lost: ConnectionResetError")
    await settle()
    await rig.engine.supervise_step()
    await settle()
    assert rig.engine.account.name == "paper-03"  # 20 ms beats paper-02's 30 ms
    assert rig.brokers[2].live.subscribed_keys() == set(SPOTS)
    assert not rig.brokers[1].sockets
    assert rig.last("connect_failed")[:2] == ("connect_failed", "paper-01")
    assert rig.last("connected") == ("connected", "paper-03", "failover after connection lost: ConnectionResetError")
    assert rig.engine.backoff[1].failures == 1 and rig.engine.backoff[1].next_try == rig.clock.t + 2


async def test_the_feed_returns_to_the_primary_once_a_probe_sees_ticks(rig):
    first = await connected(rig)
    rig.primary.up = False
    first.drop()
    await settle()
    await rig.engine.supervise_step()
    backup = rig.brokers[2].live
    rig.primary.up = True
    await rig.engine.supervise_step()
    assert rig.engine.account.name == "paper-03"  # the primary's backoff (2 s) has not run out
    assert len(rig.primary.sockets) == 2
    rig.clock.advance(2.0)
    await rig.engine.supervise_step()
    await settle()
    assert rig.engine.account.name == "paper-01"
    probe, live = rig.primary.sockets[-2:]
    assert probe.closed and live is rig.primary.live
    assert backup.closed
    assert rig.last("connected") == ("connected", "paper-01", "paper-01 is healthy again")


async def test_a_primary_that_opens_but_sends_no_ticks_is_not_taken_back(rig):
    first = await connected(rig)
    rig.primary.up = False
    first.drop()
    await settle()
    await rig.engine.supervise_step()
    rig.primary.up, rig.primary.ticking = True, False
    rig.clock.advance(2.0)
    await rig.engine.supervise_step()  # the probe waits 0.1 s (probe_timeout) for a tick
    assert rig.engine.account.name == "paper-03"
    assert rig.primary.sockets[-1].closed
    assert rig.engine.backoff[1].failures == 2 and rig.engine.backoff[1].next_try == rig.clock.t + 4


async def test_a_stall_drops_the_account_and_fails_over_without_reconnecting_it(rig):
    first = await connected(rig)
    rig.clock.advance(STALL - 0.1)
    await rig.engine.supervise_step()
    assert rig.primary.live is first
    rig.clock.advance(0.2)
    await rig.engine.supervise_step()
    await settle()
    assert first.closed
    assert len(rig.primary.sockets) == 1  # no reconnect to the stalled account
    assert rig.engine.account.name == "paper-03"
    assert rig.last("dropped") == ("dropped", "paper-01", "stall: no tick for 10 s")
    assert rig.last("connected") == ("connected", "paper-03", "failover after stall: no tick for 10 s")
    assert rig.engine.backoff[1].failures == 1


async def test_no_stall_while_the_market_is_closed(rig):
    rig.market_is_open = False
    first = await connected(rig)
    rig.clock.advance(STALL * 6)
    await rig.engine.supervise_step()
    assert rig.primary.live is first and rig.engine.state == FeedState.WS


async def test_rest_polling_when_every_websocket_is_down_then_back_to_ws(rig):
    first = await connected(rig)
    assert await rig.engine.flush_step()
    for b in rig.brokers:
        b.up = False
    first.drop()
    await settle()
    await rig.engine.supervise_step()
    assert rig.engine.state == FeedState.REST and rig.engine.account is None
    assert rig.last("rest_polling") == ("rest_polling", None, "no WebSocket works (closed by the server); polling REST")
    assert [e[:2] for e in rig.kinds() if e[0] == "connect_failed"] == [
        ("connect_failed", f"paper-0{i}") for i in (1, 3, 2)
    ]

    rig.quotes = {NIFTY: {"ltp": 101.5, "open": 99}, "NSE_INDEX:BANKNIFTY": {"ltp": 0}}
    await rig.engine.rest_step()
    assert rig.rest_calls == [(1, list(SPOTS))]
    assert rig.engine.ticks.bad == 1  # BANKNIFTY at 0
    assert await rig.engine.flush_step()
    rec = store.price_get(NIFTY)
    assert rec["src"] == "rest" and rec["ltp"] == 101.5 and rec["open"] == 99
    assert store.price_get("NSE_INDEX:BANKNIFTY")["ltp"] == 100.0  # the last good one stays
    await rig.engine.rest_step()
    assert rig.rest_calls[-1][0] == 2  # the next round asks the next account

    # Nothing is retried before a backoff runs out; then the first account that connects wins.
    sockets = sum(len(b.sockets) for b in rig.brokers)
    assert await rig.engine.supervise_step() == SUPERVISE_EVERY + 0.25
    assert sum(len(b.sockets) for b in rig.brokers) == sockets
    for b in rig.brokers:
        b.up = True
    rig.clock.advance(2.0)
    await rig.engine.supervise_step()
    await settle()
    assert rig.engine.state == FeedState.WS and rig.engine.account.name == "paper-01"
    rig.clock.advance(1.0)
    assert await rig.engine.flush_step()
    assert store.feed_status()["state"] == "ws"
    assert store.price_get(NIFTY)["src"] == "ws"
    calls = len(rig.rest_calls)
    await rig.engine.rest_step()
    assert len(rig.rest_calls) == calls  # no REST polling while a WebSocket works


async def test_no_rest_polling_while_the_market_is_closed(rig):
    rig.market_is_open = False
    for b in rig.brokers:
        b.up = False
    await rig.engine.supervise_step()
    assert rig.engine.state == FeedState.REST
    await rig.engine.rest_step()
    assert rig.rest_calls == []


async def test_bad_ticks_are_dropped_and_counted(rig):
    sock = await connected(rig)
    assert await rig.engine.flush_step()
    sock.push(
        tick(NIFTY, 0),
        tick(NIFTY, float("nan")),
        tick(NIFTY, -5),
        tick(NIFTY, "abc"),
        tick(NIFTY, None),
        json.dumps({"type": "market_data", "exchange": "NSE_INDEX", "data": {"ltp": 99}}),  # no symbol
        "{not json",  # unparseable: ignored like any unknown frame
        json.dumps({"status": "error", "code": "X", "message": "broker hiccup"}),
    )
    await settle()
    assert rig.engine.ticks.bad == 6
    assert rig.engine.ticks.total == 3  # only the three spot ticks of the subscribe
    rig.clock.advance(1.0)
    assert await rig.engine.flush_step()
    assert store.price_get(NIFTY)["ltp"] == 100.0
    assert store.feed_status()["bad_ticks"] == 6
    sock.push(tick(NIFTY, "101.25"))  # a numeric string is a good price
    await settle()
    assert await rig.engine.flush_step()
    assert store.price_get(NIFTY)["ltp"] == 101.25


async def test_subscriptions_follow_the_interest_and_its_expiry_on_the_wall_clock(rig):
    sock = await connected(rig)
    store.interest_set(SPOT_OWNER, SPOTS)
    store.interest_set("page:x", {"NSE:SBIN": 2}, ttl=5, now=rig.clock.wall())
    await rig.engine.interest_step()
    assert sock.subscribed_keys() == set(SPOTS) | {"NSE:SBIN"}
    assert sock.sent[-1] == json.loads(protocol.subscribe(["NSE:SBIN"], 2))
    rig.clock.advance(6)
    await rig.engine.interest_step()
    assert sock.subscribed_keys() == set(SPOTS)
    assert sock.sent[-1] == json.loads(protocol.unsubscribe(["NSE:SBIN"], 2))


async def test_no_accounts_is_a_state_not_a_crash(rig):
    rig.accounts = []
    assert await rig.engine.supervise_step() == SUPERVISE_EVERY + 1.0
    assert rig.engine.state == FeedState.NO_ACCOUNTS
    await rig.engine.supervise_step()
    assert [k for k, _, _ in rig.kinds()].count("no_accounts") == 1


async def test_a_feed_that_lost_its_lock_writes_nothing(rig):
    await connected(rig)
    other = FencedLock(rig.engine.redis)
    assert not await other.try_acquire()  # held
    store.client().delete(store.LOCK)
    assert await other.try_acquire()
    assert int(other.token) > int(rig.engine.lock.token)
    rig.primary.live.push(tick(NIFTY, 120.0))
    await settle()
    assert not await rig.engine.flush_step()
    assert store.price_get(NIFTY) is None
    assert not await rig.engine.lock.renew()
    await rig.engine.lock.release()  # not ours any more: nothing happens
    assert store.client().get(store.LOCK) == other.token


async def test_run_holds_the_lock_streams_and_releases_it_on_stop():
    """The loops wired together, on the real clock (well under a second)."""
    clear_marketdata_keys()
    rig = Rig(fake_clock=False)
    engine = rig.engine
    stop = asyncio.Event()
    task = asyncio.create_task(engine.run(stop))
    try:
        async with asyncio.timeout(3):
            while store.price_get(NIFTY) is None:
                await asyncio.sleep(0.02)
        assert store.client().get(store.LOCK) == engine.lock.token
        assert store.feed_status()["token"] == engine.lock.token
        assert rig.last("connected") == ("connected", "paper-01", "start")
    finally:
        stop.set()
        await asyncio.wait_for(task, 3)
    assert store.client().get(store.LOCK) is None
    assert rig.primary.sockets[-1].closed
    clear_marketdata_keys()


# ==================================================================== publisher
class FakeLayer:
    def serialize(self, message: dict) -> bytes:
        return json.dumps(message).encode()


async def test_the_publisher_sends_at_most_one_message_per_interval_and_always_the_newest():
    clear_marketdata_keys()
    clock = FakeClock()
    r = aioredis.Redis.from_url(settings.REDIS_URL)
    layer = FakeLayer()
    pub = Publisher(lock=FencedLock(r), redis_bytes=r, layer=layer, clock=clock, min_interval=0.2)
    channel, _ = store.group_publish_args(layer, NIFTY, {})
    ps = store.client().pubsub()
    ps.subscribe(channel)
    assert ps.get_message(timeout=1)["type"] == "subscribe"
    try:
        pub.ingest(NIFTY, {"ltp": 1.0})
        pub.ingest(NIFTY, {"ltp": 2.0})  # within the interval: held
        pub.ingest(NIFTY, {"ltp": 3.0})  # replaces the held one
        assert await pub.send_queued() == 1
        clock.advance(0.15)
        pub.release(NIFTY)  # the timer set by ingest fires
        assert await pub.send_queued() == 1
        clock.advance(0.2)  # more than 3/4 of the interval since the last send: straight through
        pub.ingest(NIFTY, {"ltp": 4.0})
        assert await pub.send_queued() == 1
        got = [json.loads(ps.get_message(timeout=1)["data"]) for _ in range(3)]
        assert [m["ltp"] for m in got] == [1.0, 3.0, 4.0]
        assert got[0] == {"type": "price.update", "key": NIFTY, "ltp": 1.0}
        assert pub.dirty == {NIFTY: {"ltp": 4.0}}  # Redis gets the newest at the next flush
    finally:
        ps.close()
        await r.aclose()


# ==================================================================== pure parts
def acct(i: int, *, preferred: bool = False, latency: int | None = None) -> FeedAccount:
    return FeedAccount(i, f"a{i}", "", "", socket=None, rest=None, preferred=preferred, latency_ms=latency)


A1, A2, A3, A4 = acct(1, preferred=True, latency=50), acct(2, latency=30), acct(3), acct(4, latency=10)
ALL = [A3, A2, A1, A4]


def failed(now: float, *ids: int) -> dict[int, Backoff]:
    out: dict[int, Backoff] = {}
    for i in ids:
        out.setdefault(i, Backoff()).fail(now)
    return out


def plan(backoffs=None, *, current=None, skip=False, rest=False, now=100.0):
    p = choice.plan_connect(
        ALL, backoffs or {}, current=current, skip_current=skip, polling_rest=rest, reason="why", now=now
    )
    return [(a.account.id, a.reason, a.reconnect) for a in p.attempts], p.wait


def test_failover_order_is_preferred_then_latency_then_unmeasured():
    assert [a.id for a in choice.failover_order(ALL)] == [1, 4, 2, 3]


def test_start_tries_every_account_in_order():
    assert plan() == ([(1, "why", False), (4, "why", False), (2, "why", False), (3, "why", False)], False)


def test_a_drop_reconnects_the_same_account_first_then_fails_over_past_backoffs():
    attempts, _ = plan(failed(99.0, 2), current=A4)
    assert attempts == [
        (4, "reconnect after why", True),
        (1, "failover after why", False),
        (3, "failover after why", False),
    ]


def test_a_stalled_account_is_skipped():
    attempts, _ = plan(current=A1, skip=True)
    assert [a[0] for a in attempts] == [4, 2, 3]


def test_when_every_account_is_in_backoff_the_first_is_tried_anyway():
    attempts, _ = plan(failed(99.0, 1, 2, 3, 4), current=A2)
    assert attempts == [(2, "reconnect after why", True), (1, "failover after why", False)]
    attempts, _ = plan(failed(99.0, 1, 2, 3, 4), current=A1)
    assert [a[0] for a in attempts] == [1, 1]  # reconnect, then the first anyway


def test_rest_polling_waits_until_a_backoff_runs_out():
    assert plan(failed(99.0, 1, 2, 3, 4), rest=True) == ([], True)
    attempts, wait = plan(failed(99.0, 1, 2, 3, 4), rest=True, now=101.0)
    assert not wait and [a[0] for a in attempts] == [1, 4, 2, 3]


def test_backoff_doubles_from_2s_up_to_60s():
    b = Backoff()
    steps = []
    for _ in range(7):
        b.fail(0.0)
        steps.append(b.next_try)
    assert steps == [2, 4, 8, 16, 32, 60, 60]
    assert not b.ready(59.9) and b.ready(60.0)
    b.reset()
    assert b == Backoff()


def test_switch_back_only_from_a_backup_to_a_ready_preferred_account():
    assert choice.switch_back_to(ALL, {}, current=A4, now=0) is A1
    assert choice.switch_back_to(ALL, {}, current=A1, now=0) is None
    assert choice.switch_back_to(ALL, {}, current=None, now=0) is None
    assert choice.switch_back_to(ALL, failed(0.0, 1), current=A4, now=1.9) is None
    assert choice.switch_back_to(ALL, failed(0.0, 1), current=A4, now=2.0) is A1
    assert choice.switch_back_to([A2, A3], {}, current=A2, now=0) is None


def test_subscription_messages_turn_what_we_have_into_what_we_want():
    have = {"NSE:A": 1, "NSE:B": 1, "NSE:C": 2}
    want = {"NSE:A": 1, "NSE:B": 3, "NSE:D": 1}
    assert [json.loads(m) for m in subscription_messages(want, have)] == [
        json.loads(protocol.unsubscribe(["NSE:B"], 1)),
        json.loads(protocol.unsubscribe(["NSE:C"], 2)),
        json.loads(protocol.subscribe(["NSE:B"], 3)),
        json.loads(protocol.subscribe(["NSE:D"], 1)),
    ]
    many = {f"NFO:X{i}": 1 for i in range(1001)}
    assert [len(json.loads(m)["symbols"]) for m in subscription_messages(many, {})] == [500, 500, 1]
    assert subscription_messages(want, want) == []


def test_feed_states_keep_the_strings_the_status_page_shows():
    assert [s.value for s in FeedState] == ["waiting_for_lock", "connecting", "ws", "rest", "no_accounts"]
    assert json.dumps({"state": FeedState.REST}) == '{"state": "rest"}'


def test_the_account_choice_imports_without_django():
    code = (
        "import sys, marketdata.feed.choice, marketdata.feed.state, marketdata.feed.clock, "
        "marketdata.feed.subscriptions; "
        "print(sorted({m.split('.')[0] for m in sys.modules} & {'django', 'redis', 'channels', 'asyncio'}))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
