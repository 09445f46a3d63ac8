"""The live dashboard over the real Channels stack (Redis channel layer)."""

from __future__ import annotations

import pytest
from asgiref.sync import sync_to_async
from channels.routing import URLRouter
from channels.testing import WebsocketCommunicator
from django.contrib.auth.models import AnonymousUser
from django.db import connections

from accounts import services
from accounts.routing import websocket_urlpatterns

from .factories import account_on


def communicator(user) -> WebsocketCommunicator:
    c = WebsocketCommunicator(URLRouter(websocket_urlpatterns), "/ws/dashboard/")
    c.scope["user"] = user
    return c


@pytest.mark.django_db(transaction=True)
async def test_anonymous_is_refused():
    c = communicator(AnonymousUser())
    connected, code = await c.connect()
    assert not connected and code == 4403


@pytest.mark.django_db(transaction=True)
async def test_owner_receives_account_updates_and_strangers_do_not(alice, charlie, paper_clean):
    sim = paper_clean[0]
    account = await sync_to_async(account_on)(sim, owner=alice, name="live")
    mine, theirs = communicator(alice), communicator(charlie)
    assert (await mine.connect())[0] and (await theirs.connect())[0]
    await sync_to_async(services.account_check)(account_id=account.pk)
    msg = await mine.receive_json_from(timeout=5)
    assert msg["type"] == "account.updated"
    data = msg["data"]
    assert (data["id"], data["status"]) == (account.pk, "connected")
    assert float(data["cash"]) > 0 and sim.api_key not in str(msg)
    assert await theirs.receive_nothing(timeout=0.5)
    await mine.disconnect()
    await theirs.disconnect()
    await sync_to_async(connections.close_all)()  # the executor thread's connections, before DB teardown
