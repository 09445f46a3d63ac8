"""Finding 8: one bad symbol (or one too many) never stops live prices for the rest. Interest is
validated per symbol: the bad ones are dropped and reported (log, the owner's alert, the feed page),
the rest are streamed; over the cap a deterministic subset is kept."""

from __future__ import annotations

import logging

import pytest

from marketdata import services, store

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _clean_interest():
    for owner in store.client().zrange(store.OWNERS, 0, -1):
        store.interest_clear(owner)


def test_one_invalid_key_is_dropped_and_reported_the_rest_streamed(caplog):
    caplog.set_level(logging.WARNING)
    report = services.interest_register(
        owner="positions:1", keys={"NSE:SBIN": 1, "NSE:BAD SYMBOL": 1, "NFO:NIFTY24DEC24000CE": 2, "NSE:INFY": 9}
    )
    assert store.wanted() == {"NSE:SBIN": 1, "NFO:NIFTY24DEC24000CE": 2}
    assert set(report.dropped) == {"NSE:BAD SYMBOL", "NSE:INFY"}
    assert "not an EXCHANGE:SYMBOL key" in report.dropped["NSE:BAD SYMBOL"]
    assert "NSE:BAD SYMBOL" in caplog.text
    assert store.interest_dropped("positions:1") == report.dropped


def test_over_the_cap_a_deterministic_subset_is_kept_and_the_rest_reported():
    keys = {f"NSE:S{i:04d}": 1 for i in range(services.MAX_KEYS_PER_OWNER + 25)}
    first = services.interest_register(owner="positions:2", keys=dict(reversed(list(keys.items()))))
    kept = set(store.wanted())
    assert len(kept) == services.MAX_KEYS_PER_OWNER
    assert kept == set(sorted(keys)[: services.MAX_KEYS_PER_OWNER])
    assert len(first.dropped) == 25 and all("more than" in why for why in first.dropped.values())
    again = services.interest_register(owner="positions:2", keys=keys)
    assert set(store.wanted()) == kept and again.dropped == first.dropped
