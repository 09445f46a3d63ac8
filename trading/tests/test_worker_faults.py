"""Real Celery workers (beat included) SIGKILLed in the middle of a 10-account fan-out."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import time

import pytest

from accounts.tests.factories import account_on
from brokersim.testing import ROOT, Broker, start_brokersim, stop
from core.testing import start_celery_worker, wait_for
from trading import services
from trading.models import Order
from trading.services import Leg

TRIALS = int(os.environ.get("WORKER_KILL_TRIALS", "2"))  # bench runs 20
pytestmark = [pytest.mark.slow]
RESOLVED = [Order.Status.ACCEPTED, Order.Status.OPEN, Order.Status.COMPLETE]


@pytest.fixture
def ten(tmp_path, alice):
    proc, infos = start_brokersim(tmp_path, accounts=10, seed=8)
    sims = [Broker(i) for i in infos]
    accounts = [account_on(s, owner=alice) for s in sims]
    yield list(zip(accounts, sims, strict=True))
    stop(proc)


def start_worker(queue: str) -> subprocess.Popen:
    return start_celery_worker(
        queue,
        "-B",
        "--schedule",
        str(ROOT / "var" / "test-instance" / f"beat-kill-{os.getpid()}"),
        OPENALGO_TIMEOUT="2",
        ORDER_UNKNOWN_GRACE="1",
        ORDER_ABSENCE_WINDOW="2",  # absence proven in seconds, not the production minute
        ORDER_CLAIM_SECONDS="8",  # a dead worker's unsent claims come back in 10 s, not 35
        ORDER_CLAIM_MARGIN="2",
        HEALTH_BEAT_SECONDS="3600",
    )


@pytest.mark.django_db(transaction=True)
def test_sigkilled_workers_never_duplicate_and_everything_resolves_within_30s(alice, ten, celery_test_queue):
    rng = random.Random(5)
    accounts = [a for a, _ in ten]
    for trial in range(TRIALS):
        worker = start_worker(celery_test_queue)
        wait_for(worker.ready, 30, step=0.2)  # connected to Redis and consuming
        legs = [Leg("SBIN", "NSE", "BUY", 1 + trial), Leg("INFY", "NSE", "BUY", 1 + trial)]
        batch = services.orders_create(user=alice, accounts=accounts, legs=legs)
        time.sleep(rng.uniform(0.0, 0.6))  # somewhere in the middle of the fan-out
        os.killpg(worker.pid, signal.SIGKILL)
        worker.wait()
        killed_at = time.monotonic()
        states = dict(
            batch.orders.values_list("status").annotate(
                n=__import__("django.db.models", fromlist=["Count"]).Count("id")
            )
        )
        worker = start_worker(celery_test_queue)
        try:
            wait_for(
                lambda batch=batch: not batch.orders.exclude(status__in=RESOLVED).exists(),
                killed_at + 30 - time.monotonic(),
                step=0.5,
            )
            took = time.monotonic() - killed_at
            unresolved = list(batch.orders.exclude(status__in=RESOLVED).values("status", "last_error"))
            assert not unresolved, (states, unresolved)
            assert took <= 30, took
        finally:
            os.killpg(worker.pid, signal.SIGTERM)
            worker.wait(30)
        for account, sim in ten:
            tags = [r["strategy"] for r in sim.ledger() if r["strategy"].startswith("am")]
            ours = {o.tag for o in Order.objects.filter(account=account)}
            assert len(tags) == len(set(tags)), f"duplicate on {account.name}: {tags}"
            assert set(tags) == ours
