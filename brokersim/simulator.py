"""The process-wide Simulator: one seeded market, its clock and tick loop, and the instances
(simulated OpenAlgo servers) that share it, each served on its own REST and WebSocket port."""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import logging
import time

from aiohttp import web

from . import calendar as cal
from . import instruments as ins
from . import pricing, profiles, wire
from .engine import Account, Holding
from .faults import PriceFault
from .feed import ltp_data, tick_data
from .instance import Instance
from .market import Market
from .server import make_rest_app, make_ws_app

log = logging.getLogger("brokersim")

CAPITALS = (500_000.0, 1_000_000.0, 2_500_000.0, 5_000_000.0, 10_000_000.0)
SEND_SLOTS = 10  # phases per tick interval in which instruments' frames are sent


class Simulator:
    def __init__(
        self,
        *,
        accounts: int,
        seed: int,
        start: dt.datetime | None = None,
        tick_rate: float = 5.0,
        profile: str = "mixed",
        broker_profiles: list[str] | None = None,
        api_rate_limit: int = 50,
        order_rate_limit: int = 10,
        replay: list[dict] | None = None,
        record_path: str | None = None,
        fast: bool = False,
        max_ticks: int | None = None,
        history_days: int = 20,
        auto_rollover: bool = False,
        host: str = "127.0.0.1",
        control_token: str = "",
    ) -> None:
        self.seed = seed
        # Where the instances listen; the /_sim control API demands `control_token` when it is set.
        self.host = host
        self.control_token = control_token
        # Off by default: a test run that crosses 15:15 or 03:00 IST must not lose its book.
        self.auto_rollover = auto_rollover
        self.api_rate_limit = api_rate_limit
        self.order_rate_limit = order_rate_limit
        self.fast = fast
        self.max_ticks = max_ticks
        start = start or dt.datetime.now(dt.UTC)
        self.market = Market(seed=seed, start=start, tick_rate=tick_rate, replay=replay, history_days=history_days)
        self.started = self.market.now
        self.record_file = open(record_path, "w") if record_path else None  # noqa: SIM115
        if self.record_file:
            self.record_file.write(self.market.record_header() + "\n" + self.market.record_line() + "\n")
        self.instances: list[Instance] = []
        cycle = [profiles.get(name) for name in broker_profiles or ["clean"]]
        for i in range(1, accounts + 1):
            if profile == "mixed":
                prof = wire.SANDBOX if i % 2 else wire.LIVE
            else:
                prof = profile
            key = hashlib.sha256(f"brokersim:{seed}:{i}".encode()).hexdigest()
            inst = Instance(
                self, i, f"paper-{i:02d}", wire.BROKERS[(i - 1) % len(wire.BROKERS)], key, prof, self.new_account(i)
            )
            inst.home_profile = cycle[(i - 1) % len(cycle)]
            inst.set_profile(inst.home_profile)
            self.instances.append(inst)
        self.ticks_delivered = 0

    def new_account(self, i: int) -> Account:
        capital = CAPITALS[(i - 1) % len(CAPITALS)]
        acc = Account(index=i, market=self.market, capital=capital)
        # A couple of long-term holdings so /holdings has something to show.
        for n, name in enumerate(("RELIANCE", "INFY", "TCS")[: 1 + i % 3]):
            u = ins.UNDERLYINGS[name]
            avg = pricing.round_tick(u.base_price * (0.8 + 0.05 * ((i + n) % 7)))
            acc.holdings.append(Holding(name, "NSE", 5 * (1 + (i + n) % 4), avg))
        return acc

    # ------------------------------------------------------------------ tick loop
    def _data_cache(self):
        cache: dict[tuple, bytes] = {}
        market = self.market
        stamp = None if self.fast or market.replay else int(time.time() * 1000)

        def data_for(symbol: str, exchange: str, mode: int, fault: PriceFault | None) -> bytes:
            key = (symbol, exchange, mode, fault)
            d = cache.get(key)
            if d is None:
                inst = market.lookup(symbol, exchange)
                if mode == 1:
                    d = ltp_data(symbol, exchange, market.ltp(inst), market.ts_ms, fault, stamp)
                else:
                    d = tick_data(market.quote(inst), mode, fault, stamp)
                cache[key] = d
            return d

        return data_for

    def tick(self, slot: int = 0, slots: int = 1) -> bool:
        """Advance the market one step and send slot 0's share of it (all of it when slots == 1)."""
        before = self.market.now
        if not self.market.step():
            return False
        if self.auto_rollover:
            for stage, exchanges in cal.rollover_events(before, self.market.now):
                for inst in self.instances:
                    inst.rollover(stage, exchanges)
        if self.record_file:
            self.record_file.write(self.market.record_line() + "\n")
        for inst in self.instances:
            inst.account.on_tick()
        self.send(slot, slots)
        return True

    def send(self, slot: int, slots: int) -> None:
        data_for = self._data_cache()
        for inst in self.instances:
            self.ticks_delivered += inst.feed.broadcast(data_for, slot, slots)

    async def run_ticks(self) -> None:
        """Market steps every 1/tick_rate s. Each instrument's frames go out in its own phase slot
        of that interval (like a real feed, where symbols tick independently), not all at once:
        a synchronised burst of every symbol would measure queueing, not the pipeline."""
        loop = asyncio.get_running_loop()
        slots = 1 if self.fast else SEND_SLOTS
        next_at = loop.time()
        n = 0
        while self.max_ticks is None or n < self.max_ticks:
            try:
                if not self.tick(0, slots):
                    break
            except Exception:  # a bug in one tick must not kill the market
                log.exception("tick failed")
            n += 1
            if self.fast:
                await asyncio.sleep(0)
                continue
            for k in range(1, slots):
                await asyncio.sleep(max(next_at + k * self.market.dt / slots - loop.time(), 0))
                self.send(k, slots)
            next_at += self.market.dt
            delay = next_at - loop.time()
            if delay < -1.0:  # far behind (machine paused): skip ahead instead of bursting
                next_at = loop.time()
                delay = 0
            await asyncio.sleep(max(delay, 0))
        if self.record_file:
            self.record_file.flush()

    # ------------------------------------------------------------------ serving
    async def start(self, base_port: int) -> None:
        for inst in self.instances:
            rest_port = 0 if base_port == 0 else base_port + inst.index
            ws_port = 0 if base_port == 0 else base_port + 3000 + inst.index
            await self.start_rest(inst, rest_port)
            await self.start_ws(inst, ws_port)

    async def start_rest(self, inst: Instance, port: int) -> None:
        runner = web.AppRunner(make_rest_app(inst), access_log=None, handle_signals=False)
        await runner.setup()
        site = web.TCPSite(runner, self.host, port, reuse_address=True)
        await site.start()
        inst.rest_port = site._server.sockets[0].getsockname()[1]
        inst.rest_runner = runner
        inst.stopped = False

    async def stop_instance(self, inst: Instance) -> None:
        """Stop serving one instance entirely: REST and WebSocket connections are refused."""
        await self.stop_ws(inst)
        if inst.rest_runner is not None:
            await inst.rest_runner.cleanup()
            inst.rest_runner = None
        inst.stopped = True

    async def start_instance(self, inst: Instance) -> None:
        if inst.stopped:
            await self.start_rest(inst, inst.rest_port)
        if inst.ws_down:
            await self.start_ws(inst, inst.ws_port)

    async def start_ws(self, inst: Instance, port: int) -> None:
        runner = web.AppRunner(make_ws_app(inst), access_log=None, handle_signals=False)
        await runner.setup()
        site = web.TCPSite(runner, self.host, port, reuse_address=True)
        await site.start()
        inst.ws_port = site._server.sockets[0].getsockname()[1]
        inst.ws_site, inst.ws_runner = site, runner
        inst.ws_down = False

    async def stop_ws(self, inst: Instance) -> None:
        if inst.ws_runner is not None:
            await inst.feed.close_all()
            await inst.ws_runner.cleanup()
            inst.ws_runner = inst.ws_site = None
        inst.ws_down = True

    async def close(self) -> None:
        for inst in self.instances:
            await inst.feed.close_all()
            if inst.ws_runner is not None:
                await inst.ws_runner.cleanup()
        for inst in self.instances:
            if inst.rest_runner is not None:
                await inst.rest_runner.cleanup()
        if self.record_file:
            self.record_file.close()
