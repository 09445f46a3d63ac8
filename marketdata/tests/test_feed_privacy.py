"""Finding 7: the feed page and status.json show a non-admin only their own accounts, instruments
and reasons; which users' accounts may carry the one platform feed is the administrator's choice
(MARKETDATA_FEED_ACCOUNTS: "admins" by default, "all" to share any user's market-data account)."""

from __future__ import annotations

import json
import time

import pytest

from accounts.tests.factories import UserFactory, account_on
from marketdata import services, store
from marketdata.tests.conftest import clear_marketdata_keys

pytestmark = pytest.mark.django_db


@pytest.fixture
def two_users(alice, charlie, paper_clean):
    clear_marketdata_keys()
    a = account_on(paper_clean[0], owner=alice)
    c = account_on(paper_clean[1], owner=charlie)
    services.positions_interest_set({alice.pk: {"NSE:SBIN": 1}, charlie.pk: {"NSE:CHARLIESECRET": 1}})
    now = int(time.time() * 1000)
    r = store.client()
    # What the feed records while it streams from charlie's account after a failover.
    r.set(
        store.STATUS,
        json.dumps(
            {
                "state": "ws",
                "account": c.name,
                "account_id": c.pk,
                "ws_url": c.ws_url,
                "subscribed": ["NSE:CHARLIESECRET", "NSE:SBIN"],
                "wanted": 2,
                "ticks_per_s": 1.0,
                "ticks_total": 5,
                "bad_ticks": 0,
                "last_tick_age_s": 0.2,
                "pid": 4242,
                "token": 7,
                "updated": now,
            }
        ),
    )
    for e in (
        {"ts": now, "kind": "dropped", "account": a.name, "account_id": a.pk, "reason": "stall: no tick for 5 s"},
        {"ts": now, "kind": "connected", "account": c.name, "account_id": c.pk, "reason": "failover after charlie-x"},
        {"ts": now, "kind": "rest_polling", "account": None, "reason": f"no WebSocket works ({c.ws_url}); polling"},
    ):
        r.lpush(store.EVENTS, json.dumps(e))
    yield a, c
    clear_marketdata_keys()


def test_a_user_sees_only_their_own_feed_details(client, alice, two_users):
    a, c = two_users
    client.force_login(alice)
    for url in ("/marketdata/feed/status.json", "/marketdata/feed/"):
        body = client.get(url).content.decode()
        for secret in (c.name, c.ws_url, "CHARLIESECRET", "charlie-x", '"pid"', "4242"):
            assert secret not in body, (url, secret)
    data = client.get("/marketdata/feed/status.json").json()
    assert data["status"]["account"] is None and data["status"]["account_id"] is None
    assert data["status"]["subscribed"] == ["NSE:SBIN"]
    assert [e["account_id"] for e in data["events"] if e.get("account_id")] == [a.pk]


def test_an_admin_sees_the_whole_feed(client, two_users):
    _a, c = two_users
    admin = UserFactory(username="root", admin=True)
    client.force_login(admin)
    data = client.get("/marketdata/feed/status.json").json()
    assert data["status"]["account_id"] == c.pk and "NSE:CHARLIESECRET" in data["status"]["subscribed"]
    assert "charlie-x" in json.dumps(data["events"])


def test_the_platform_feed_uses_other_users_accounts_only_when_the_administrator_says_so(
    alice, charlie, paper_clean, settings
):
    admin = UserFactory(username="root", admin=True)
    account_on(paper_clean[0], owner=alice)
    ops = account_on(paper_clean[1], owner=admin)
    assert [f.id for f in services.feed_accounts()] == [ops.pk]  # default: the administrators' accounts
    settings.MARKETDATA_FEED_ACCOUNTS = "all"  # the administrator shares any user's market-data account
    assert len(services.feed_accounts()) == 2
