"""Issue 11, attacked after the merge (see accounts/tests/test_i11_attacks.py): a WebSocket opened
with the cookie of a session past its idle timeout or its lifetime. Red on main: the limits were
checked on HTTP requests only."""

from __future__ import annotations

import time

import pytest
from django.test import Client

from accounts.tests.factories import PASSWORD


def login(client: Client) -> int:
    return client.post("/auth/login/", {"login": "alice", "password": PASSWORD}).status_code


def _session_cookie(client: Client) -> str:
    from django.conf import settings

    return f"{settings.SESSION_COOKIE_NAME}={client.cookies[settings.SESSION_COOKIE_NAME].value}"


async def _ws_connects(cookie: str) -> bool:
    from channels.testing import WebsocketCommunicator

    from algomirror.asgi import application

    c = WebsocketCommunicator(
        application, "/ws/dashboard/", headers=[(b"cookie", cookie.encode()), (b"origin", b"http://testserver")]
    )
    connected, _ = await c.connect()
    if connected:
        await c.disconnect()
    return connected


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("expired", ["idle", "absolute"])
async def test_a_websocket_does_not_outlive_the_session_limits(alice, expired):
    """Before: the idle timeout and the absolute lifetime were checked on HTTP requests only; a
    session left idle (or past 12 h) still opened the live WebSockets with its cookie."""
    from asgiref.sync import sync_to_async
    from django.contrib.sessions.backends.db import SessionStore
    from django.db import connections

    from accounts.adapters import SESSION_SEEN, SESSION_STARTED

    await sync_to_async(__import__)("algomirror.asgi")  # its start-up key check reads the database
    client = Client()
    assert await sync_to_async(login)(client) == 302
    cookie = _session_cookie(client)
    assert await _ws_connects(cookie)

    def age_session():
        from django.conf import settings

        key = client.cookies[settings.SESSION_COOKIE_NAME].value
        s = SessionStore(session_key=key)
        now = time.time()
        if expired == "idle":
            s[SESSION_SEEN] = now - 31 * 60
        else:
            s[SESSION_STARTED] = now - 12 * 3600 - 60
        s.save()

    await sync_to_async(age_session)()
    assert not await _ws_connects(cookie)
    await sync_to_async(connections.close_all)()
