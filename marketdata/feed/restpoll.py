"""The REST fallback: while no WebSocket works, wanted prices come from `multiquotes`.

Keys go out in chunks of 50 (one call each, in parallel threads), spread over the accounts in
turn so no single broker carries all the polling.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field

from openalgo_client import protocol

from .choice import FeedAccount
from .clock import Clock

REST_INTERVAL = 1.0  # seconds between polls
REST_CHUNK = 50
QUOTE_FIELDS = ("open", "high", "low", "prev_close", "volume", "oi", "bid", "ask")

# (account, keys) -> {key: quote data}; blocking (it runs in a thread), may raise.
RestPoll = Callable[[FeedAccount, list[str]], dict[str, dict]]


@dataclass
class RestBatch:
    records: list[tuple[str, dict]] = field(default_factory=list)
    bad: int = 0  # quotes whose price was unusable (0, negative, NaN, missing)


class RestPoller:
    def __init__(self, poll: RestPoll, *, clock: Clock, chunk: int = REST_CHUNK) -> None:
        self.poll = poll
        self.clock = clock
        self.chunk = chunk
        self.turn = 0

    async def poll_once(self, accounts: list[FeedAccount], keys: list[str]) -> RestBatch:
        """One round: price records for the keys that came back with a usable price.
        A call that fails only loses its chunk for this round."""
        chunks = [keys[i : i + self.chunk] for i in range(0, len(keys), self.chunk)]
        results = await asyncio.gather(
            *(
                asyncio.to_thread(self.poll, accounts[(self.turn + i) % len(accounts)], chunk)
                for i, chunk in enumerate(chunks)
            ),
            return_exceptions=True,
        )
        self.turn += 1
        now_ms = int(self.clock.wall() * 1000)
        out = RestBatch()
        for res in results:
            if isinstance(res, BaseException):
                continue
            for key, data in res.items():
                ltp = protocol.valid_price(data.get("ltp"))
                if ltp is None:
                    out.bad += 1
                    continue
                fields = {k: data[k] for k in QUOTE_FIELDS if protocol.number(data.get(k)) is not None}
                out.records.append((key, {"ltp": ltp, "ts": now_ms, "src": "rest", **fields}))
        return out
