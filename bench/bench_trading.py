"""Trading benchmarks, run as pytest so they get a real test database (PostgreSQL under
`make bench`). Figures are printed and go to docs/performance.md.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/algomirror \\
      .venv/bin/python -m pytest -q -s -o python_files='bench_*.py' bench/bench_trading.py

1. Fan-out: one order to 50 accounts with 50 ms of latency injected at brokersim on every
   placeorder, sent by a real Celery worker (the production pool: threads) → time from the
   order's commit until each account's order is accepted (p50, max; all within 1 s).
   A second run has one account's broker hanging: the other 49 must not wait for it.
2. Books page: 50 accounts and 2,000 orders, each tab requested 60 times → server time p50/p95.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import time

import pytest

from accounts import services as account_services
from brokersim.testing import Broker, start_brokersim, stop
from core.testing import start_celery_worker
from trading import services
from trading.models import Order

Status = Order.Status
CONCURRENCY = int(os.environ.get("CELERY_CONCURRENCY", "8"))
WORKERS = int(os.environ.get("CELERY_WORKERS", "2"))


def start_workers(queue: str, n: int) -> list[subprocess.Popen]:
    return [start_celery_worker(queue, concurrency=CONCURRENCY) for _ in range(n)]


def idle(queue: str, timeout: float = 90.0) -> None:
    """Wait until the workers' queue has stayed empty for 2 s."""
    from marketdata import store

    quiet_since, deadline = None, time.monotonic() + timeout
    while time.monotonic() < deadline:
        if store.client().llen(queue):
            quiet_since = None
        elif quiet_since is None:
            quiet_since = time.monotonic()
        elif time.monotonic() - quiet_since > 2:
            return
        time.sleep(0.1)


def accepted_times(batch, t0: float, n: int, timeout: float = 30.0) -> list[float]:
    """Seconds from t0 until each order of the batch was seen accepted (polled every 20 ms with
    one raw query, so the observer takes little of the CPU it measures)."""
    from django.db import connection

    seen: dict[int, float] = {}
    deadline = time.monotonic() + timeout
    sql = "SELECT id FROM trading_order WHERE batch_id = %s AND status IN ('accepted', 'open', 'complete')"
    with connection.cursor() as cur:
        while len(seen) < n and time.monotonic() < deadline:
            now = time.monotonic()
            cur.execute(sql, [batch.pk])
            for (pk,) in cur.fetchall():
                seen.setdefault(pk, now - t0)
            time.sleep(0.02)
    return sorted(seen.values())


@pytest.mark.django_db(transaction=True)
def test_fanout_50_accounts_50ms(tmp_path, alice, celery_test_queue):
    proc, infos = start_brokersim(tmp_path, accounts=50, seed=21)
    workers = start_workers(celery_test_queue, WORKERS)
    try:
        sims = [Broker(i) for i in infos]
        accounts = [
            account_services.account_create(
                owner=alice, name=s.info["name"], host_url=s.host, ws_url=s.ws_url, api_key=s.api_key
            )
            for s in sims
        ]
        for s in sims:
            s.sim("POST", "fault", {"endpoint": "placeorder", "kind": "latency", "value": 50})
        idle(celery_test_queue)  # start-up work (connection checks, reconciliation) is done
        results = []
        for trial in range(7):
            t0 = time.monotonic()
            batch = services.orders_create(user=alice, accounts=accounts, legs=[services.Leg("SBIN", "NSE", "BUY", 1)])
            times = accepted_times(batch, t0, len(accounts))
            assert len(times) == len(accounts), f"trial {trial}: only {len(times)} accepted"
            if trial >= 2:  # two warm-up rounds: worker threads open their HTTP pools
                results.append(times)
        flat = [t for r in results for t in r]
        p50, mx = statistics.median(flat) * 1000, max(flat) * 1000
        print(
            f"\nFAN-OUT 50 accounts, 50 ms injected, {WORKERS} workers × {CONCURRENCY} threads, 5 trials: "
            f"accepted p50 {p50:.0f} ms, max {mx:.0f} ms; per-trial max "
            f"{[round(max(r) * 1000) for r in results]} ms"
        )
        # One account's broker hangs (no answer until the client timeout): the others don't wait.
        sims[0].sim("POST", "fault", {"endpoint": "placeorder", "kind": "hang"})
        t0 = time.monotonic()
        batch = services.orders_create(user=alice, accounts=accounts, legs=[services.Leg("SBIN", "NSE", "BUY", 1)])
        times = accepted_times(batch, t0, len(accounts) - 1, timeout=8)
        print(
            f"FAN-OUT with one broker hanging: the other {len(times)} accepted, p50 "
            f"{statistics.median(times) * 1000:.0f} ms, max {max(times) * 1000:.0f} ms"
        )
        assert len(times) == 49 and max(times) < 1.0
        assert mx < 1000
    finally:
        for w in workers:
            w.kill()
            w.wait()
        stop(proc)


@pytest.mark.django_db
def test_books_page_50_accounts_2000_orders(client, alice):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from marketdata import store
    from trading.testing import SYMBOLS, books_seed

    books_seed(user=alice, accounts=50, orders=2000)
    now_ms = time.time() * 1000
    store.client().hset(
        store.PRICES, mapping={f"NSE:{s}": json.dumps({"ltp": 101.5, "ts": now_ms + 600_000}) for s in SYMBOLS}
    )
    client.force_login(alice)
    lines = []
    for tab in ("positions", "orders", "trades", "holdings", "funds"):
        url = f"/trading/books/?tab={tab}"
        client.get(url)
        samples = []
        for _ in range(60):
            t = time.perf_counter()
            r = client.get(url)
            samples.append((time.perf_counter() - t) * 1000)
            assert r.status_code == 200
        with CaptureQueriesContext(connection) as q:
            client.get(url)
        samples.sort()
        p95 = samples[int(len(samples) * 0.95) - 1]
        lines.append(
            f"  {tab:<9} p50 {statistics.median(samples):6.1f} ms  p95 {p95:6.1f} ms  {len(q.captured_queries)} queries"
        )
        assert p95 < 150, (tab, p95)
    store.client().hdel(store.PRICES, *[f"NSE:{s}" for s in SYMBOLS])
    print("\nBOOKS 50 accounts, 2,000 orders, 60 requests per tab:\n" + "\n".join(lines))
