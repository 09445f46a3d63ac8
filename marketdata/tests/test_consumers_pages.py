"""The market-data consumer over the real Channels stack, and the pages."""

from __future__ import annotations

import datetime as dt

import pytest
from asgiref.sync import sync_to_async
from channels.layers import get_channel_layer
from channels.routing import URLRouter
from channels.testing import WebsocketCommunicator
from django.contrib.auth.models import AnonymousUser
from django.db import connections
from django.utils import timezone

from accounts.tests.factories import UserFactory, account_on
from marketdata import store
from marketdata.routing import websocket_urlpatterns

from .conftest import clear_marketdata_keys


def communicator(user) -> WebsocketCommunicator:
    c = WebsocketCommunicator(URLRouter(websocket_urlpatterns), "/ws/marketdata/")
    c.scope["user"] = user
    return c


@pytest.mark.django_db(transaction=True)
async def test_anonymous_refused():
    connected, code = await communicator(AnonymousUser()).connect()
    assert not connected and code == 4403


@pytest.mark.django_db(transaction=True)
async def test_watch_registers_interest_streams_prices_and_cleans_up(alice):
    await sync_to_async(clear_marketdata_keys)()
    await sync_to_async(store.client().hset)(store.PRICES, "NSE:SBIN", '{"ltp": 900.5, "ts": 1, "src": "ws"}')
    c = communicator(alice)
    assert (await c.connect())[0]
    await c.send_json_to({"action": "watch", "symbols": [{"key": "NSE:SBIN", "mode": 3}, "NSE_INDEX:NIFTY"]})
    snap = await c.receive_json_from(timeout=5)
    assert snap["type"] == "price" and snap["key"] == "NSE:SBIN" and snap["stale"] is True  # old: marked stale
    assert (await c.receive_json_from(timeout=5)) == {"type": "watching", "count": 2}
    wanted = await sync_to_async(store.wanted)()
    assert wanted == {"NSE:SBIN": 3, "NSE_INDEX:NIFTY": 2}
    await get_channel_layer().group_send(
        store.group_name("NSE:SBIN"), {"type": "price.update", "key": "NSE:SBIN", "ltp": 901.0, "ts": 2}
    )
    live = (await c.receive_json_from(timeout=5))["items"][0]
    assert (live["key"], live["ltp"], live["stale"]) == ("NSE:SBIN", 901.0, False)
    await c.send_json_to({"action": "heartbeat"})
    assert (await c.receive_json_from(timeout=5))["type"] == "heartbeat"
    # Bad input: a clear error, and nothing changes.
    await c.send_json_to({"action": "watch", "symbols": ["NSE:SBIN; DROP"]})
    assert (await c.receive_json_from(timeout=5))["type"] == "error"
    await c.send_json_to({"action": "dance"})
    assert (await c.receive_json_from(timeout=5))["type"] == "error"
    assert await sync_to_async(store.wanted)() == wanted
    await c.disconnect()
    assert await sync_to_async(store.wanted)() == {}
    await sync_to_async(connections.close_all)()


@pytest.mark.django_db
def test_option_chain_page_renders_from_the_data_account(client, alice, paper_clean):
    sim = paper_clean[0]
    account_on(sim, owner=alice, name="p1")
    client.force_login(alice)
    r = client.get("/marketdata/chain/?underlying=NIFTY&strikes=5")
    html = r.content.decode()
    assert r.status_code == 200 and "NIFTY option chain" in html
    assert html.count('data-f="ltp"') == 22  # 11 strikes × CE/PE
    assert "atm-row" in html and "PCR" in html
    assert client.get("/marketdata/chain/?underlying=XYZ&strikes=99").status_code == 200  # sanitised, not a 500


@pytest.mark.django_db
def test_option_chain_without_accounts_says_what_to_do(client, alice):
    client.force_login(alice)
    assert "Add a connected OpenAlgo account" in client.get("/marketdata/chain/").content.decode()


@pytest.mark.django_db
def test_feed_monitor_and_status_json(client, alice):
    client.force_login(alice)
    assert client.get("/marketdata/feed/").status_code == 200
    data = client.get("/marketdata/feed/status.json").json()
    assert set(data) == {"status", "events", "dropped", "market"}


@pytest.mark.django_db
def test_calendar_page_is_admin_only_and_validates(client, alice, settings):
    from marketdata.models import MarketHoliday, SpecialTradingSession

    client.force_login(alice)
    assert client.get("/marketdata/calendar/").status_code == 302  # not staff
    admin = UserFactory(username="root", email="r@example.com", password="Very-long-passphrase-42", admin=True)
    client.force_login(admin)
    assert "Trading calendar" in client.get("/marketdata/calendar/").content.decode()
    when = timezone.localdate() + dt.timedelta(days=300)  # ahead of today and of the seeded holidays
    MarketHoliday.objects.filter(date=when).delete()
    n = MarketHoliday.objects.count()
    client.post("/marketdata/calendar/holidays/", {"date": when, "name": "Republic Day", "market": "NSE"})
    assert MarketHoliday.objects.count() == n + 1
    r = client.post("/marketdata/calendar/holidays/", {"date": when, "name": "again", "market": "NSE"}, follow=True)
    assert f"NSE already has a holiday on {when:%a %d %b %Y}: Republic Day." in r.content.decode()
    assert MarketHoliday.objects.count() == n + 1
    r = client.post(
        "/marketdata/calendar/specials/",
        {"date": when, "name": "Muhurat", "market": "NSE", "start": "18:00", "end": "17:00"},
        follow=True,
    )
    assert "must end after it starts" in r.content.decode()
    assert not SpecialTradingSession.objects.filter(date=when).exists()


@pytest.mark.django_db(transaction=True)
async def test_pipelined_publish_is_what_the_channel_layer_delivers(alice):
    """The feed pipelines PUBLISHes itself; a consumer must receive them exactly like group_send."""
    import redis.asyncio as aioredis
    from django.conf import settings

    layer = get_channel_layer()
    c = communicator(alice)
    assert (await c.connect())[0]
    await c.send_json_to({"action": "watch", "symbols": ["NSE:INFY"]})
    while (await c.receive_json_from(timeout=5))["type"] != "watching":
        pass
    r = aioredis.Redis.from_url(settings.REDIS_URL)
    channel, payload = store.group_publish_args(
        layer, "NSE:INFY", {"type": "price.update", "key": "NSE:INFY", "ltp": 1550.5, "ts": 3}
    )
    assert channel == layer._get_layer()._get_group_channel_name(store.group_name("NSE:INFY"))
    await r.publish(channel, payload)
    msg = (await c.receive_json_from(timeout=5))["items"][0]
    assert (msg["key"], msg["ltp"]) == ("NSE:INFY", 1550.5)
    await r.aclose()
    await c.disconnect()
    await sync_to_async(connections.close_all)()
