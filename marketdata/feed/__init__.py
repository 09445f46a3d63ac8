"""The feed engine's parts (the engine itself is `marketdata.stream.FeedEngine`).

* `clock` — the one injected clock (monotonic for durations, wall for timestamps).
* `state` — `FeedState` and the tick counters the status record shows.
* `choice` — PURE: which account to connect next, when to hand the feed back to the preferred one.
* `subscriptions` — PURE: the subscribe/unsubscribe messages that turn what we have into what we want.
* `lock` — the fenced single-feed lock in Redis (and the fenced write of prices and status).
* `publisher` — prices out: fenced writes to Redis, throttled and pipelined Channels publishes.
* `restpoll` — the REST `multiquotes` fallback while no WebSocket works.

This file imports nothing, so the pure modules stay importable without Django.
"""
