"""The shared simulated market: seeded random walks, derived futures and option chains.

Everything is a deterministic function of (seed, start, control actions): tick n happens
at simulated time start + n/tick_rate, whatever the wall clock does, so the same seed
gives the same market byte for byte. Futures and options are priced from their
underlying on every tick, so moving an underlying moves its whole chain consistently.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import random
from dataclasses import dataclass, field

from . import calendar as cal
from . import instruments as ins
from . import pricing

UTC = dt.UTC
TRADING_SECONDS_PER_YEAR = 252 * 375 * 60
INTERVAL_SECONDS = {"1m": 60, "3m": 180, "5m": 300, "10m": 600, "15m": 900, "30m": 1800, "1h": 3600, "D": 86400}


def mix(*parts: int) -> int:
    """splitmix64 over the parts: a cheap, stable pseudo-random integer for quote details."""
    x = 0x9E3779B97F4A7C15
    for p in parts:
        x = (x ^ (p & 0xFFFFFFFFFFFFFFFF)) * 0xBF58476D1CE4E5B9 & 0xFFFFFFFFFFFFFFFF
        x ^= x >> 31
        x = x * 0x94D049BB133111EB & 0xFFFFFFFFFFFFFFFF
        x ^= x >> 29
    return x


@dataclass
class Quote:
    symbol: str
    exchange: str
    ltp: float
    open: float
    high: float
    low: float
    prev_close: float
    bid: float
    ask: float
    volume: int
    oi: int
    ltq: int
    average_price: float
    total_buy_qty: int
    total_sell_qty: int
    bids: list = field(default_factory=list)  # [(price, qty, orders)] best first
    asks: list = field(default_factory=list)
    ts_ms: int = 0

    @property
    def bid_qty(self) -> int:
        return self.bids[0][1] if self.bids else 0

    @property
    def ask_qty(self) -> int:
        return self.asks[0][1] if self.asks else 0


@dataclass
class DayStats:
    day: dt.date
    open: float
    high: float
    low: float
    prev_close: float


class Market:
    def __init__(
        self,
        *,
        seed: int,
        start: dt.datetime,
        tick_rate: float = 5.0,
        history_days: int = 20,
        replay: list[dict] | None = None,
    ) -> None:
        self.seed = seed
        self.tick_rate = tick_rate
        self.dt = 1.0 / tick_rate
        self.rng = random.Random(seed)  # nosec B311 # a seeded, reproducible paper market; nothing secret is drawn
        self.paused = False
        self.tick_no = 0
        self._replay_pos = 0
        self.replay = None
        if replay:
            # A recording starts with a header naming the market it came from; rebuilding
            # that market (its seeded past, day statistics and depth noise) and then
            # applying the recorded spots reproduces every tick exactly.
            header, *ticks = replay
            if "seed" not in header or not ticks:
                raise ValueError("not a brokersim recording: the first line must be its header")
            seed, history_days = int(header["seed"]), int(header["history_days"])
            start = dt.datetime.fromtimestamp(header["start"] / 1000, UTC)
            self.seed, self.tick_rate, self.dt = seed, float(header["tick_rate"]), 1.0 / float(header["tick_rate"])
            self.rng = random.Random(seed)  # nosec B311 # replay rebuilds the recorded seeded market
            self.replay = ticks
        # MCX walks draw from their own stream, so adding commodities left every earlier
        # seed's equity and index market exactly as it was.
        self.mcx_rng = random.Random(f"brokersim-mcx:{self.seed}")  # nosec B311 # the seeded MCX walk, reproducible on purpose
        self.start = start.astimezone(UTC).replace(microsecond=(start.microsecond // 1000) * 1000)
        self.spots: dict[str, float] = {}
        self.overrides: dict[tuple[str, str], float] = {}
        self.bars: dict[str, list[list[float]]] = {}
        self.stats: dict[str, DayStats] = {}
        self._cache: dict[tuple[str, str], Quote] = {}
        self._ltp_cache: dict[tuple[str, str, str], float] = {}
        self.history_days = history_days
        self._generate_past(history_days)
        self._ts_ms = int(self.start.timestamp() * 1000)
        if self.replay:
            self._apply_replay(self.replay[0])

    # ------------------------------------------------------------------ clock
    @property
    def now(self) -> dt.datetime:
        return dt.datetime.fromtimestamp(self._ts_ms / 1000, UTC)

    @property
    def ts_ms(self) -> int:
        return self._ts_ms

    @property
    def today(self) -> dt.date:
        return self.now.astimezone(cal.IST).date()

    @property
    def listing_day(self) -> dt.date:
        """The first day whose expiries are still alive: a contract stops being listed once its
        expiry day's close has passed (the demo market keeps ticking after 15:30 IST, and an
        option past expiry has no time value left to price)."""
        return self.listing_day_for("NSE")

    def listing_day_for(self, exchange: str) -> dt.date:
        """listing_day for one exchange: MCX contracts live until MCX's 23:30 close."""
        now = self.now.astimezone(cal.IST)
        return now.date() + dt.timedelta(days=1) if now.time() >= cal.close_time(exchange) else now.date()

    # ------------------------------------------------------------------ past
    def _generate_past(self, history_days: int) -> None:
        """Seeded 1-minute bars for every trading session in the window before `start`."""
        equities = [n for n in ins.UNDERLYINGS if n not in ins.COMMODITY_NAMES]
        self._walk_past(history_days, equities, self.rng, "NSE")
        self._walk_past(history_days, list(ins.COMMODITY_NAMES), self.mcx_rng, "MCX")

    def _walk_past(self, history_days: int, names: list[str], rng: random.Random, exchange: str) -> None:
        start_ist = self.start.astimezone(cal.IST)
        first_day = start_ist.date() - dt.timedelta(days=history_days)
        unds = {n: ins.UNDERLYINGS[n] for n in names}
        minute_sigma = {n: u.annual_vol / math.sqrt(252 * 375) for n, u in unds.items()}
        price = {n: u.base_price * math.exp(rng.gauss(0, 0.02)) for n, u in unds.items()}
        for n in names:
            self.bars[n] = []
        day = first_day
        while day <= start_ist.date():
            if cal.is_trading_day(day):
                open_at, close_at = cal.session_bounds(day, exchange)
                for n in names:  # overnight gap
                    price[n] *= math.exp(rng.gauss(0, 4 * minute_sigma[n]))
                t = open_at
                while t < close_at and t < start_ist:
                    epoch = t.timestamp()
                    for n in names:
                        s = minute_sigma[n]
                        o = price[n]
                        c = o * math.exp(rng.gauss(0, s))
                        h = max(o, c) * (1 + abs(rng.gauss(0, s)) * 0.5)
                        lo = min(o, c) * (1 - abs(rng.gauss(0, s)) * 0.5)
                        self.bars[n].append([epoch, o, h, lo, c])
                        price[n] = c
                    t += dt.timedelta(minutes=1)
            day += dt.timedelta(days=1)
        today = start_ist.date()
        for n in names:
            spot = price[n]
            bars = self.bars[n]
            todays = [b for b in bars if dt.datetime.fromtimestamp(b[0], cal.IST).date() == today]
            before = [b for b in bars if dt.datetime.fromtimestamp(b[0], cal.IST).date() < today]
            prev_close = before[-1][4] if before else spot
            if todays:
                stats = DayStats(today, todays[0][1], max(b[2] for b in todays), min(b[3] for b in todays), prev_close)
            else:
                stats = DayStats(today, spot, spot, spot, prev_close)
            self.stats[n] = stats
            self.spots[n] = spot

    # ------------------------------------------------------------------ ticks
    def step(self) -> bool:
        """Advance one tick. Returns False when a replay has run out."""
        if self.replay is not None:
            self._replay_pos += 1
            if self._replay_pos >= len(self.replay):
                return False
            self._apply_replay(self.replay[self._replay_pos])
        else:
            self.tick_no += 1
            self._ts_ms = int(self.start.timestamp() * 1000) + round(self.tick_no * self.dt * 1000)
            sigma_scale = math.sqrt(self.dt / TRADING_SECONDS_PER_YEAR)
            for n, u in ins.UNDERLYINGS.items():
                z = (self.mcx_rng if u.is_commodity else self.rng).gauss(0, 1)
                if not self.paused:
                    self.spots[n] *= math.exp(u.annual_vol * sigma_scale * z)
        self._after_move()
        return True

    def _apply_replay(self, rec: dict) -> None:
        self.tick_no = int(rec["n"])
        self._ts_ms = int(rec["ts"])
        self.spots.update(rec["spots"])
        self.overrides = {(s, e): off for s, e, off in rec.get("overrides", [])}

    def _after_move(self) -> None:
        self._cache.clear()
        self._ltp_cache.clear()
        today = self.today
        minute = (self._ts_ms // 60000) * 60
        for n, spot in self.spots.items():
            st = self.stats[n]
            if st.day != today:
                self.stats[n] = DayStats(today, spot, spot, spot, self.bars[n][-1][4] if self.bars[n] else spot)
            else:
                st.high = max(st.high, spot)
                st.low = min(st.low, spot)
            bars = self.bars[n]
            if bars and bars[-1][0] == minute:
                b = bars[-1]
                b[2] = max(b[2], spot)
                b[3] = min(b[3], spot)
                b[4] = spot
            else:
                bars.append([minute, spot, spot, spot, spot])

    def record_header(self) -> str:
        return json.dumps(
            {
                "brokersim": 1,
                "seed": self.seed,
                "start": int(self.start.timestamp() * 1000),
                "history_days": self.history_days,
                "tick_rate": self.tick_rate,
            },
            separators=(",", ":"),
        )

    def record_line(self) -> str:
        rec: dict = {"n": self.tick_no, "ts": self._ts_ms, "spots": self.spots}
        if self.overrides:
            rec["overrides"] = [[s, e, off] for (s, e), off in sorted(self.overrides.items())]
        return json.dumps(rec, separators=(",", ":"))

    # ------------------------------------------------------------------ control
    def lookup(self, symbol: str, exchange: str) -> ins.Instrument | None:
        if not isinstance(exchange, str):
            return None
        return ins.lookup(symbol, exchange, self.listing_day_for(exchange))

    def set_ltp(self, inst: ins.Instrument, ltp: float) -> float:
        if inst.kind in ("index", "equity"):
            self.spots[inst.underlying.name] = ltp
            self.overrides = {k: v for k, v in self.overrides.items() if k != (inst.symbol, inst.exchange)}
        else:
            self.overrides.pop((inst.symbol, inst.exchange), None)
            self._cache.clear()
            self._ltp_cache.clear()
            self.overrides[(inst.symbol, inst.exchange)] = ltp - self._model_price(
                inst, self.spots[inst.underlying.name]
            )
        self._after_move()
        return self.quote(inst).ltp

    def move_underlying(self, name: str, move_pct: float) -> float:
        self.spots[name] *= 1 + move_pct / 100.0
        self._after_move()
        return self.spots[name]

    # ------------------------------------------------------------------ pricing
    def years_to_expiry(self, expiry: dt.date, at: dt.datetime | None = None, exchange: str = "NSE") -> float:
        at = at or self.now
        close = dt.datetime.combine(expiry, cal.close_time(exchange), cal.IST)
        return max((close - at).total_seconds(), 0.0) / (365 * 86400)

    def _model_price(self, inst: ins.Instrument, spot: float, at: dt.datetime | None = None) -> float:
        if inst.kind in ("index", "equity"):
            return spot
        t = self.years_to_expiry(inst.expiry, at, inst.exchange)
        fwd = pricing.forward(spot, t)
        if inst.kind == "future":
            return fwd
        vol = pricing.smile_vol(inst.underlying.annual_vol, inst.strike, fwd, t)
        return pricing.black76(fwd, inst.strike, t, vol, inst.option_type)

    def price_at(self, inst: ins.Instrument, spot: float, at: dt.datetime | None = None) -> float:
        """Model price plus any control-API offset, on the tick grid, never below one tick."""
        raw = self._model_price(inst, spot, at) + self.overrides.get((inst.symbol, inst.exchange), 0.0)
        price = pricing.round_tick(raw, inst.tick_size)
        return price if inst.kind in ("index", "equity") else max(price, inst.tick_size)

    def ltp(self, inst: ins.Instrument) -> float:
        """The last price alone: cheaper than a full quote (no day range, depth or volume)."""
        q = self._cache.get((inst.symbol, inst.exchange))
        if q is not None:
            return q.ltp
        key = (inst.symbol, inst.exchange, "ltp")
        p = self._ltp_cache.get(key)
        if p is None:
            p = self._ltp_cache[key] = self.price_at(inst, self.spots[inst.underlying.name])
        return p

    def quote(self, inst: ins.Instrument) -> Quote:
        key = (inst.symbol, inst.exchange)
        q = self._cache.get(key)
        if q is None:
            q = self._cache[key] = self._make_quote(inst)
        return q

    def _make_quote(self, inst: ins.Instrument) -> Quote:
        u = inst.underlying
        st = self.stats[u.name]
        spot = self.spots[u.name]
        ltp = self.price_at(inst, spot)
        yesterday = self.now - dt.timedelta(days=1)
        if inst.kind == "option" and inst.option_type == "PE":
            hi_spot, lo_spot = st.low, st.high
        else:
            hi_spot, lo_spot = st.high, st.low
        open_ = self.price_at(inst, st.open)
        high = max(self.price_at(inst, hi_spot), ltp, open_)
        low = min(self.price_at(inst, lo_spot), ltp, open_)
        prev_close = self.price_at(inst, st.prev_close, yesterday)
        h = ins.hash_symbol(inst.symbol)
        lot = inst.lot_size
        tick = inst.tick_size
        if inst.kind == "index":
            return Quote(
                inst.symbol,
                inst.exchange,
                ltp,
                open_,
                high,
                low,
                prev_close,
                0.0,
                0.0,
                0,
                0,
                0,
                0.0,
                0,
                0,
                [],
                [],
                self._ts_ms,
            )
        half = max(tick, pricing.round_tick(ltp * 0.0006, tick))
        bid = max(pricing.round_tick(ltp - half, tick), 0.0)
        ask = pricing.round_tick(ltp + half, tick)
        bids, asks = [], []
        for level in range(5):
            r = mix(h, self.tick_no, level, self.seed)
            qb = lot * (1 + r % 40)
            qa = lot * (1 + (r >> 16) % 40)
            bp = pricing.round_tick(bid - level * tick, tick)
            if bp > 0:
                bids.append((bp, qb, 1 + (r >> 32) % 9))
            asks.append((pricing.round_tick(ask + level * tick, tick), qa, 1 + (r >> 40) % 9))
        ticks_today = self.tick_no + 1
        volume = lot * (h % 5000 + 200 + (h % 37 + 3) * ticks_today)
        oi = lot * (h % 90000 + 1000 + mix(h, self.tick_no // 50) % 500) if inst.kind != "equity" else 0
        r = mix(h, self.tick_no, 99)
        return Quote(
            inst.symbol,
            inst.exchange,
            ltp,
            open_,
            high,
            low,
            prev_close,
            bid,
            ask,
            volume,
            oi,
            lot * (1 + r % 10),
            pricing.round_tick((high + low + ltp) / 3, tick),
            sum(b[1] for b in bids) * 7,
            sum(a[1] for a in asks) * 7,
            bids,
            asks,
            self._ts_ms,
        )

    # ------------------------------------------------------------------ history
    def history(self, inst: ins.Instrument, interval: str, start: dt.date, end: dt.date) -> list[dict]:
        """Candles built from the 1-minute bars of the underlying (seeded past + live ticks).

        Intraday buckets are anchored at the session open (09:15 IST, MCX 09:00); `timestamp` is
        the bar start in epoch seconds. Daily bars carry 00:00 UTC of their IST trading date, as OpenAlgo does.
        """
        lo = dt.datetime.combine(start, dt.time(0), cal.IST).timestamp()
        hi = dt.datetime.combine(end + dt.timedelta(days=1), dt.time(0), cal.IST).timestamp()
        secs = INTERVAL_SECONDS[interval]
        buckets: dict[int, list[float]] = {}
        order: list[int] = []
        for epoch, o, h, low, c in self.bars[inst.underlying.name]:
            if epoch < lo or epoch >= hi:
                continue
            ist = dt.datetime.fromtimestamp(epoch, cal.IST)
            if interval == "D":
                key = int(dt.datetime.combine(ist.date(), dt.time(0), UTC).timestamp())
            else:
                anchor = dt.datetime.combine(ist.date(), cal.open_time(inst.exchange), cal.IST).timestamp()
                key = int(anchor + ((epoch - anchor) // secs) * secs)
            b = buckets.get(key)
            if b is None:
                buckets[key] = [o, h, low, c, epoch]
                order.append(key)
            else:
                b[1] = max(b[1], h)
                b[2] = min(b[2], low)
                b[3] = c
                b[4] = epoch
        out = []
        h_sym = ins.hash_symbol(inst.symbol)
        for key in order:
            o, h, low, c, last_epoch = buckets[key]
            at = dt.datetime.fromtimestamp(last_epoch + 60, UTC)
            prices = [self.price_at(inst, s, at) for s in (o, h, low, c)]
            po, ph, pl, pc = prices
            vol = 0 if inst.kind == "index" else inst.lot_size * (mix(h_sym, key) % 3000 + 10) * max(secs // 60, 1)
            oi = inst.lot_size * (h_sym % 90000 + 1000) if inst.kind in ("future", "option") else 0
            out.append(
                {
                    "timestamp": key,
                    "open": po,
                    "high": max(prices),
                    "low": min(prices),
                    "close": pc,
                    "volume": int(vol),
                    "oi": int(oi),
                }
            )
            del ph, pl
        return out
