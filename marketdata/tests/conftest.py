"""A real feed process (`manage.py run_feed`) against brokersim, the test database and Redis."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from accounts import services as account_services
from brokersim.testing import ROOT
from core.testing import database_url, wait_for
from marketdata import store


def clear_marketdata_keys() -> None:
    r = store.client()
    keys = list(r.scan_iter("md:*"))
    if keys:
        r.delete(*keys)


class FeedProcess:
    def __init__(self, env: dict):
        self.env = env
        self.proc: subprocess.Popen | None = None

    def start(self) -> FeedProcess:
        self.proc = subprocess.Popen(
            [sys.executable, "manage.py", "run_feed"],
            cwd=ROOT,
            env=self.env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )
        return self

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()


@pytest.fixture
def feed_accounts(transactional_db, alice, paper_clean):
    """Three connected accounts; the first holds the market-data role."""
    clear_marketdata_keys()
    out = []
    for sim in paper_clean[:3]:
        a = account_services.account_create(
            owner=alice, name=sim.info["name"], host_url=sim.host, ws_url=sim.ws_url, api_key=sim.api_key
        )
        out.append(account_services.account_check(account_id=a.pk))
    for sim in paper_clean:
        sim.sim("POST", "ws", {"action": "resume"})
    yield list(zip(out, paper_clean[:3], strict=True))
    for sim in paper_clean:
        sim.sim("POST", "ws", {"action": "up"})
        sim.sim("POST", "ws", {"action": "resume"})
    clear_marketdata_keys()


@pytest.fixture
def feed_env(feed_accounts):
    # alice is no administrator: her accounts carry the feed because the installation shares them.
    return dict(
        os.environ,
        DATABASE_URL=database_url(),
        PRICE_MAX_AGE="3",
        LOG_LEVEL="WARNING",
        MARKETDATA_FEED_ACCOUNTS="all",
    )


@pytest.fixture
def feed(feed_env):
    f = FeedProcess(feed_env).start()
    yield f
    f.stop()


def new_price_after(key: str, after_ms: float, src: str | None = "ws", timeout: float = 10.0) -> float | None:
    """Seconds until a price for `key` received after `after_ms` lands in the store (None on timeout)."""
    start = time.monotonic()

    def check():
        rec = store.price_get(key)
        return rec and rec["ts"] > after_ms and (src is None or rec["src"] == src)

    return time.monotonic() - start if wait_for(check, timeout) else None
