"""Fixtures: a real brokersim process on free ports."""

from __future__ import annotations

import pytest

from brokersim.testing import Broker, start_brokersim, stop


@pytest.fixture(scope="session")
def brokersim_proc(tmp_path_factory):
    proc, accounts = start_brokersim(tmp_path_factory.mktemp("brokersim"))
    yield accounts
    stop(proc)


@pytest.fixture
def brokers(brokersim_proc):
    """All instances, each reset to a clean book (market left running)."""
    out = [Broker(info) for info in brokersim_proc]
    for b in out:
        b.sim("POST", "reset", {"market": True})
    yield out
    for b in out:
        b.http.close()


@pytest.fixture
def broker(brokers):
    return brokers[0]


@pytest.fixture
def live_broker(brokers):
    """An instance with the live (string-typed) response profile."""
    return brokers[1]
