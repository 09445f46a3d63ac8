"""One simulated OpenAlgo server: its key, paper account, feed, armed faults, rate-limit
windows and serving state. Every instance shares the Simulator's market."""

from __future__ import annotations

import asyncio
import ipaddress
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from aiohttp import web

from . import calendar as cal
from . import profiles, wire
from .engine import Account, Order
from .faults import Fault
from .feed import Feed
from .ratelimit import MovingWindow

if TYPE_CHECKING:
    from .simulator import Simulator


@dataclass
class Instance:
    sim: Simulator
    index: int
    name: str
    broker: str
    api_key: str
    profile: str
    account: Account
    user_id: str = "admin"
    rest_port: int = 0
    ws_port: int = 0
    session_expired: bool = False
    faults: list[Fault] = field(default_factory=list)
    requests: Counter = field(default_factory=Counter)
    ws_down: bool = False
    ws_site: web.TCPSite | None = None
    ws_runner: web.AppRunner | None = None
    rest_runner: web.AppRunner | None = None
    stopped: bool = False
    feed: Feed = None  # type: ignore[assignment]
    # Work scheduled for later (late_execute), cancelled by reset.
    pending: set[asyncio.TimerHandle] = field(default_factory=set)
    # The broker profile it starts with (and returns to on reset), and the one in force.
    home_profile: profiles.Profile = profiles.CLEAN
    broker_profile: profiles.Profile = profiles.CLEAN
    profile_state: profiles.ProfileState = field(default_factory=profiles.ProfileState)

    def __post_init__(self) -> None:
        # What a profile that does not set them falls back to.
        self.home_wire, self.home_broker = self.profile, self.broker
        self.set_profile(self.home_profile)
        self.feed = Feed(self)
        # OpenAlgo limits order routes and other routes separately (see gate.BUCKET_OF).
        self.limits = {
            "order": MovingWindow(self.sim.order_rate_limit),
            "smart": MovingWindow(self.sim.order_rate_limit),
            "api": MovingWindow(self.sim.api_rate_limit),
        }
        self.account.listeners.append(self._order_event)

    @property
    def address(self) -> str:
        """The address clients use: the listening one, or loopback for a wildcard (0.0.0.0, ::)."""
        host = getattr(self.sim, "host", "127.0.0.1")
        try:
            if not host or ipaddress.ip_address(host).is_unspecified:
                return "127.0.0.1"
        except ValueError:
            return host  # a name
        return f"[{host}]" if ":" in host else host

    @property
    def host(self) -> str:
        return f"http://{self.address}:{self.rest_port}"

    @property
    def ws_url(self) -> str:
        return f"ws://{self.address}:{self.ws_port}"

    def info(self) -> dict:
        return {
            "name": self.name,
            "broker": self.broker,
            "host": self.host,
            "ws_url": self.ws_url,
            "api_key": self.api_key,
        }

    def _order_event(self, o: Order) -> None:
        self.feed.order_update(
            {
                "type": "order_update",
                "user_id": self.user_id,
                "mode": "analyze" if self.profile == wire.SANDBOX else "live",
                "broker": "sandbox" if self.profile == wire.SANDBOX else self.broker,
                "orderid": o.orderid,
                "symbol": o.symbol,
                "exchange": o.exchange,
                "action": o.action,
                "quantity": o.quantity,
                "price": o.price,
                "trigger_price": o.trigger_price,
                "pricetype": o.pricetype,
                "product": o.product,
                "order_status": o.status,
                "filled_quantity": o.filled_quantity,
                "pending_quantity": o.pending_quantity,
                "average_price": round(o.average_price, 2),
                "rejection_reason": o.rejection_reason,
            }
        )

    def set_profile(self, profile: profiles.Profile) -> None:
        """Switch broker profile: a real broker's quirks come with the live wire profile and its
        name. Orders already placed count as read (no transient states), queued orders drop.
        Switch on a flat book: positions keep the units they were opened in."""
        self.broker_profile = profile
        self.account.contract_exchanges = profile.contracts_on
        self.profile = wire.LIVE if profile.live else self.home_wire
        self.broker = profile.broker or self.home_broker
        self.profile_state = profiles.ProfileState(seen=set(self.account.orders))

    def rollover(self, stage: str, exchanges: Iterable[str] | None = None) -> dict:
        """Run one stage of the daily rollover on this account: `squareoff` (the broker closes
        MIS), `close` (unfilled day orders expire), `new_day` (03:00: the day's orders and trades
        leave the books), or `day_end` (all three in order). What it did, by orderid."""
        if stage not in (*cal.ROLLOVER_STAGES, "day_end"):
            raise ValueError(f"unknown stage {stage!r}; stages are {', '.join(cal.ROLLOVER_STAGES)}, day_end")
        only = frozenset(exchanges) if exchanges is not None else None
        acc = self.account
        out: dict = {"squared_off": [], "expired": []}
        if stage in ("squareoff", "day_end"):
            out["squared_off"] = [o.orderid for o in acc.square_off(only)]
        if stage in ("close", "day_end"):
            out["expired"] = [o.orderid for o in acc.expire_day_orders(only)]
        if stage in ("new_day", "day_end"):
            acc.new_day()
            self.profile_state.seen.clear()
        out["session"] = acc.session
        return out

    def call_later(self, delay: float, fn: Callable[[], object]) -> None:
        """Run `fn` in `delay` seconds on the running loop, unless the instance is reset first."""

        def run() -> None:
            self.pending.discard(handle)
            fn()

        handle = asyncio.get_running_loop().call_later(delay, run)
        self.pending.add(handle)

    def reset(self) -> None:
        fresh = self.sim.new_account(self.index)
        self.account.clear_books()
        for handle in self.pending:
            handle.cancel()  # a late_execute order of the old book is dropped
        self.pending.clear()
        self.account.holdings = fresh.holdings
        self.account.capital = fresh.capital
        self.faults.clear()
        self.set_profile(self.home_profile)
        self.session_expired = False
        self.requests.clear()
        self.feed.stalled = False
        self.feed.price_fault = None
        for lim in self.limits.values():
            lim.reset()


# How the REST and WebSocket apps of an instance find it (request.app[INSTANCE]).
INSTANCE = web.AppKey("instance", Instance)
