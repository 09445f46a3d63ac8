"""Mass close: 20 accounts × 4 legs closed together by real Celery workers — every account flat at
the broker, shorts bought back before longs are sold on each account, and never more than 8
orders a second to any one OpenAlgo host (brokersim's ledger timestamps)."""

from __future__ import annotations

import os
import time

import pytest

from accounts.models import AuditEvent
from accounts.tests.factories import account_on
from brokersim.testing import Broker, start_brokersim, stop
from core.testing import start_celery_worker, wait_for
from trading import services
from trading.models import Order
from trading.throttle import RATE

pytestmark = [pytest.mark.slow]
ACCOUNTS = int(os.environ.get("MASS_CLOSE_ACCOUNTS", "20"))


@pytest.fixture
def twenty(tmp_path, alice):
    proc, infos = start_brokersim(tmp_path, accounts=ACCOUNTS, seed=12)
    sims = [Broker(i) for i in infos]
    accounts = [account_on(s, owner=alice) for s in sims]
    yield list(zip(accounts, sims, strict=True))
    stop(proc)


def open_condor(sim: Broker) -> None:
    """Two long wings and two short legs, placed at the broker directly (close-all exits whatever
    the broker holds, ours or not)."""
    legs = [
        ("BUY", sim.atm_option("CE", "OTM4")),
        ("BUY", sim.atm_option("PE", "OTM4")),
        ("SELL", sim.atm_option("CE", "OTM2")),
        ("SELL", sim.atm_option("PE", "OTM2")),
    ]
    for action, symbol in legs:
        sim.ok(
            "placeorder",
            strategy="outside",
            symbol=symbol,
            exchange="NFO",
            action=action,
            quantity="65",
            pricetype="MARKET",
            product="NRML",
        )


def positions(sim: Broker) -> dict[str, int]:
    rows = sim.ok("positionbook")["data"]
    return {r["symbol"]: int(float(r["quantity"])) for r in rows if int(float(r["quantity"]))}


def max_per_second(timestamps_ms: list[int]) -> int:
    """The most orders inside any one-second window (a moving second, as OpenAlgo counts)."""
    ts = sorted(timestamps_ms)
    best, start = 0, 0
    for end, t in enumerate(ts):
        while t - ts[start] >= 1000:
            start += 1
        best = max(best, end - start + 1)
    return best


@pytest.mark.django_db(transaction=True)
def test_twenty_accounts_close_together_flat_shorts_first_within_the_rate(alice, twenty, celery_test_queue):
    for _, sim in twenty:
        open_condor(sim)
        assert len(positions(sim)) == 4
    worker = start_celery_worker(celery_test_queue, concurrency=8)
    try:
        wait_for(worker.ready, 30, step=0.2)
        started = time.monotonic()
        for account, _ in twenty:
            services.account_close_request(user=alice, account_id=account.pk)
        flat = wait_for(lambda: all(not positions(sim) for _, sim in twenty), 90, step=0.5)
        took = time.monotonic() - started
    finally:
        worker.terminate()
        worker.wait(30)
    left = {a.name: positions(sim) for a, sim in twenty if positions(sim)}
    ours = list(Order.objects.values_list("account__name", "action", "status", "last_error")[:20])
    refusals = list(AuditEvent.objects.filter(action=AuditEvent.Action.CLOSE_REFUSED).values_list("message"))
    assert flat, f"still open after close-all: {left}; our orders: {ours}; refused: {refusals}"
    for account, sim in twenty:
        exits = [r for r in sim.ledger() if r["strategy"].startswith("am")]
        assert len(exits) == 4, (account.name, exits)  # one exit per leg, none twice
        buys = [r["ts"] for r in exits if r["action"] == "BUY"]
        sells = [r["ts"] for r in exits if r["action"] == "SELL"]
        assert max(buys) <= min(sells), f"{account.name}: a long was sold before the shorts were bought back"
        assert max_per_second([r["ts"] for r in exits]) <= RATE
    print(f"mass close: {len(twenty)} accounts × 4 legs flat in {took:.1f} s")  # noqa: T201
