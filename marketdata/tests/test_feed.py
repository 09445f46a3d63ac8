"""The feed process against brokersim: exact subscriptions, failover, price validity, one connection."""

from __future__ import annotations

import json
import os
import statistics
import time

import pytest

from marketdata import services, store

from .conftest import FeedProcess, new_price_after, wait_for

pytestmark = [pytest.mark.slow]
NIFTY = "NSE_INDEX:NIFTY"
SPOTS = {"NSE_INDEX:NIFTY", "NSE_INDEX:BANKNIFTY", "BSE_INDEX:SENSEX"}
TRIALS = int(os.environ.get("FEED_TRIALS", "3"))  # `make bench` runs 20 (bench/feed_failover_bench.py)


def record(name: str, seconds: list[float]) -> None:
    """Trial timings for the benchmark report (only when bench/feed_failover_bench.py asks)."""
    path = os.environ.get("FEED_TIMINGS_FILE")
    if path:
        with open(path, "a") as fh:
            fh.write(json.dumps({"scenario": name, "seconds": seconds}) + "\n")


def now_ms() -> float:
    return time.time() * 1000


def subscriptions(sim) -> set[str]:
    return set(sim.sim("GET", "ws")["subscriptions"])


def connections(paper) -> int:
    return sum(s.sim("GET", "ws")["authenticated"] for s in paper)


def current_sim(feed_accounts):
    # The status record is flushed once a second: just after the first price it may not name the account yet.
    account_id = wait_for(lambda: store.feed_status().get("account_id"), 2)
    return next(sim for acc, sim in feed_accounts if acc.pk == account_id)


def chain_keys(sim, strikes: int = 10) -> dict[str, int]:
    chain = sim.ok(
        "optionchain", underlying="NIFTY", exchange="NSE_INDEX", expiry_date=sim.nearest_expiry(), strike_count=strikes
    )["chain"]
    return {f"NFO:{row[side]['symbol']}": 3 for row in chain for side in ("ce", "pe")}


def test_subscribes_exactly_the_interest_and_drops_expired_sessions(feed, feed_accounts):
    primary = feed_accounts[0][1]
    assert wait_for(lambda: subscriptions(primary) == SPOTS, 15), subscriptions(primary)
    positions = {"NSE:SBIN": 1, "NSE:RELIANCE": 1, f"NFO:{primary.atm_option('PE', 'OTM3')}": 1}
    services.interest_register(owner="positions", keys=positions)
    page = chain_keys(primary)  # 21 strikes × 2 sides
    assert len(page) == 42
    services.interest_register(owner="page:test", keys=page, ttl=3)  # a page that stops heartbeating
    expected = SPOTS | set(positions) | set(page)
    t0 = time.monotonic()
    assert wait_for(lambda: subscriptions(primary) == expected, 5)
    assert time.monotonic() - t0 < 1.5  # changes take effect within a second (0.5 s poll)
    assert wait_for(lambda: subscriptions(primary) == SPOTS | set(positions), 6)  # the session expired
    services.interest_register(owner="positions", keys={})
    assert wait_for(lambda: subscriptions(primary) == SPOTS, 3)


def test_page_session_expiry_follows_the_heartbeat(feed_accounts):
    """With the default 5-minute TTL, moving the clock: alive at 299 s, gone at 301 s."""
    t0 = 1_800_000_000.0
    store.interest_set("page:clock", {"NSE:SBIN": 2}, ttl=300, now=t0)
    assert "NSE:SBIN" in store.wanted(now=t0 + 299)
    store.interest_touch("page:clock", ttl=300, now=t0 + 200)  # a heartbeat
    assert "NSE:SBIN" in store.wanted(now=t0 + 499)
    assert "NSE:SBIN" not in store.wanted(now=t0 + 501)


def test_a_closed_socket_is_reconnected_within_3s(feed, feed_accounts):
    assert new_price_after(NIFTY, now_ms(), timeout=15) is not None
    times = []
    for _ in range(TRIALS):
        sim = current_sim(feed_accounts)
        t = now_ms()
        sim.sim("POST", "ws", {"action": "close"})
        took = new_price_after(NIFTY, t + 1, timeout=10)
        assert took is not None and took < 3, took
        times.append(took)
        time.sleep(0.3)
    record("websocket closed", times)
    assert statistics.median(times) < 3


def test_a_stopped_primary_fails_over_to_a_backup_within_3s_and_comes_back(feed, feed_accounts, paper_clean):
    primary_acc, primary = feed_accounts[0]
    assert new_price_after(NIFTY, now_ms(), timeout=15) is not None
    assert wait_for(lambda: store.feed_status().get("account_id") == primary_acc.pk, 2)
    other = feed_accounts[1][1]
    times = []
    for _ in range(TRIALS):
        t = now_ms()
        other.sim("POST", "instance", {"name": primary.info["name"], "action": "stop"})
        try:
            took = new_price_after(NIFTY, t + 1, timeout=10)
            assert took is not None and took < 3, took
            times.append(took)
            assert wait_for(lambda: store.feed_status().get("account_id") != primary_acc.pk, 3)
        finally:
            other.sim("POST", "instance", {"name": primary.info["name"], "action": "start"})
        # Handed back once a probe sees ticks (backoff 2 s, then a probe of up to 3 s).
        assert wait_for(lambda: store.feed_status().get("account_id") == primary_acc.pk, 20)
    record("primary instance stopped", times)
    kinds = [e["kind"] for e in store.feed_events(100)]
    assert "connected" in kinds and any(e["reason"].endswith("is healthy again") for e in store.feed_events(100))


def test_a_stall_is_detected_and_recovered_within_15s(feed, feed_accounts):
    assert new_price_after(NIFTY, now_ms(), timeout=15) is not None
    sim = current_sim(feed_accounts)
    t = now_ms()
    sim.sim("POST", "ws", {"action": "stall"})
    took = new_price_after(NIFTY, t + 1, timeout=20)
    assert took is not None and took < 15, took
    record("stall", [took])
    assert any(e["kind"] == "dropped" and e["reason"].startswith("stall") for e in store.feed_events(20))


def test_rest_polling_when_every_websocket_is_down_then_back_to_ws(feed, feed_accounts, paper_clean):
    assert new_price_after(NIFTY, now_ms(), timeout=15) is not None
    for sim in paper_clean:
        sim.sim("POST", "ws", {"action": "down"})
    t = now_ms()
    assert new_price_after(NIFTY, t, src="rest", timeout=15) is not None
    # The status record is flushed once a second: it may trail the first REST price a little.
    assert wait_for(lambda: store.feed_status()["state"] == "rest", 2)
    for _ in range(5):  # prices stay younger than 5 s while polling
        time.sleep(1)
        rec = store.fresh_price(NIFTY, max_age=5)
        assert rec is not None and rec["src"] == "rest"
    for sim in paper_clean:
        sim.sim("POST", "ws", {"action": "up"})
    assert new_price_after(NIFTY, now_ms(), src="ws", timeout=70) is not None
    assert wait_for(lambda: store.feed_status()["state"] == "ws", 3)


@pytest.mark.parametrize("fault", ["zero_prices", "nan_prices"])
def test_zero_and_nan_never_replace_a_good_price_and_it_goes_stale(feed, feed_accounts, fault):
    assert new_price_after(NIFTY, now_ms(), timeout=15) is not None
    sim = current_sim(feed_accounts)
    good = store.price_get(NIFTY)["ltp"]
    sim.sim("POST", "ws", {"action": fault})
    for _ in range(10):
        time.sleep(0.4)
        rec = store.price_get(NIFTY)
        assert rec["ltp"] > 0 and rec["ltp"] == rec["ltp"]  # never 0, never NaN
    assert store.price_get(NIFTY)["ltp"] == pytest.approx(good, rel=0.01)
    assert store.fresh_price(NIFTY, max_age=3) is None  # older than PRICE_MAX_AGE (3 s in this test): stale
    assert store.feed_status()["bad_ticks"] > 0


def test_two_feed_processes_make_exactly_one_broker_connection(feed, feed_env, feed_accounts, paper_clean):
    assert new_price_after(NIFTY, now_ms(), timeout=15) is not None
    second = FeedProcess(feed_env).start()
    try:
        time.sleep(3)
        assert connections(paper_clean) == 1
        feed.stop()  # the first goes away: the second takes over the lock and connects
        assert new_price_after(NIFTY, now_ms(), timeout=10) is not None
        assert connections(paper_clean) == 1
    finally:
        second.stop()
