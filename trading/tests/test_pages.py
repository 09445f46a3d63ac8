"""Order form, batch progress (Channels), books and CSV."""

from __future__ import annotations

from decimal import Decimal

import pytest
from asgiref.sync import sync_to_async
from channels.routing import URLRouter
from channels.testing import WebsocketCommunicator
from django.db import connections

from accounts.tests.factories import account_on
from trading import selectors, services
from trading.models import Order
from trading.routing import websocket_urlpatterns


@pytest.fixture
def two(alice, paper_clean):
    return [account_on(s, owner=alice) for s in paper_clean[:2]]


@pytest.mark.django_db
def test_order_form_queues_one_order_per_account_and_shows_progress(client, alice, two):
    client.force_login(alice)
    r = client.post(
        "/trading/orders/new/",
        {
            "accounts": [a.pk for a in two],
            "symbol": "SBIN",
            "exchange": "NSE",
            "action": "BUY",
            "quantity": 5,
            "pricetype": "MARKET",
            "product": "MIS",
            "confirmed": "1",
        },
    )
    assert r.status_code == 302
    assert Order.objects.filter(symbol="SBIN").count() == 2
    page = client.get(r.url).content.decode()
    assert page.count("data-order=") == 2 and "Queued" in page


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"symbol": "sbin; drop"}, "Use the OpenAlgo symbol"),
        ({"quantity": 0}, "greater than or equal to 1"),
        ({"pricetype": "LIMIT"}, "A limit price is required"),
        ({"accounts": []}, "This field is required"),
    ],
)
def test_bad_order_input_changes_nothing(client, alice, two, changes, message):
    client.force_login(alice)
    data = {
        "accounts": [two[0].pk],
        "symbol": "SBIN",
        "exchange": "NSE",
        "action": "BUY",
        "quantity": 5,
        "pricetype": "MARKET",
        "product": "MIS",
    } | changes
    r = client.post("/trading/orders/new/", data)
    assert r.status_code == 200 and message in r.content.decode()
    assert not Order.objects.exists()


@pytest.mark.django_db
def test_strangers_cannot_see_batches_or_use_accounts(client, alice, charlie, two):
    batch = services.orders_create(user=alice, accounts=two, legs=[services.Leg("SBIN", "NSE", "BUY", 1)])
    client.force_login(charlie)
    assert client.get(f"/trading/orders/{batch.pk}/").status_code == 404
    r = client.post(
        "/trading/orders/new/",
        {
            "accounts": [two[0].pk],
            "symbol": "SBIN",
            "exchange": "NSE",
            "action": "BUY",
            "quantity": 1,
            "pricetype": "MARKET",
            "product": "MIS",
        },
    )
    assert "Select a valid choice" in r.content.decode()
    assert "SBIN" not in client.get("/trading/books/").content.decode()


@pytest.mark.django_db
def test_books_and_csv(client, alice, two, django_capture_on_commit_callbacks):
    batch = services.orders_create(user=alice, accounts=two, legs=[services.Leg("SBIN", "NSE", "BUY", 4)])
    for a in two:
        services.orders_send_account(account_id=a.pk, batch_id=batch.pk)
        with django_capture_on_commit_callbacks(execute=True):
            services.orders_poll_account(account_id=a.pk)
    client.force_login(alice)
    page = client.get("/trading/books/").content.decode()
    assert page.count("<td>SBIN</td>") == 2
    assert "no fresh price" in page  # no feed running in this test: unknown, never shown as 0
    csv_text = client.get("/trading/books/?export=positions").content.decode()
    assert csv_text.splitlines()[0].startswith("account,symbol") and csv_text.count("SBIN") == 2
    one = client.get(f"/trading/books/?tab=orders&export=orders&account={two[0].pk}").content.decode()
    assert one.count("SBIN") == 1


@pytest.mark.django_db
@pytest.mark.parametrize("tab", ["positions", "orders", "trades", "holdings", "funds"])
def test_books_query_count_does_not_grow_with_accounts(client, alice, tab, django_assert_max_num_queries):
    """5 accounts and 200 orders, then 50 accounts and 2,000: every tab runs the same queries."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from trading.testing import books_seed

    client.force_login(alice)
    url = f"/trading/books/?tab={tab}"
    books_seed(user=alice, accounts=5, orders=200)
    client.get(url)  # warm the session and caches
    with CaptureQueriesContext(connection) as small:
        assert client.get(url).status_code == 200
    books_seed(user=alice, accounts=45, orders=1800, start=5)
    with django_assert_max_num_queries(len(small.captured_queries)):
        page = client.get(url)
    assert page.status_code == 200 and "acct-049" in page.content.decode()
    assert len(small.captured_queries) <= 8


@pytest.mark.django_db
def test_books_tabs_filters_sorting_and_csv(client, alice):
    from trading.testing import books_seed

    books_seed(user=alice, accounts=3, orders=40)
    client.force_login(alice)
    page = client.get("/trading/books/?tab=orders&symbol=infy&status=open&sort=-qty").content.decode()
    assert "INFY" in page and "SBIN" not in page and "Cancel" in page
    qtys = [o.quantity for o in selectors.order_list(user=alice, sort="-qty", limit=None)]
    assert qtys == sorted(qtys, reverse=True)
    page = client.get("/trading/books/?tab=positions").content.decode()
    assert "outside AlgoMirror" in page and "Adopt broker" in page  # acct-000 is flagged
    assert page.count('data-position="NSE:SBIN"') == 3
    trades = client.get("/trading/books/?tab=trades").content.decode()
    assert "outside AlgoMirror" in trades and "₹" in trades
    for tab in ("positions", "orders", "trades", "holdings", "funds"):
        body = client.get(f"/trading/books/?tab={tab}&export={tab}").content.decode()
        lines = body.splitlines()
        assert lines[0].startswith("account") or lines[0].startswith("time_ist")
        assert len(lines) > 1, tab
    assert client.get("/trading/books/?tab=nonsense&sort=';drop&account=abc").status_code == 200


@pytest.mark.django_db(transaction=True)
async def test_batch_progress_is_pushed_to_the_owner_only(alice, charlie, paper_clean):
    sim = paper_clean[0]
    acc = await sync_to_async(account_on)(sim, owner=alice, name="live")
    batch = await sync_to_async(services.orders_create)(
        user=alice, accounts=[acc], legs=[services.Leg("SBIN", "NSE", "BUY", 1)]
    )
    stranger = WebsocketCommunicator(URLRouter(websocket_urlpatterns), f"/ws/batches/{batch.pk}/")
    stranger.scope["user"] = charlie
    assert (await stranger.connect()) == (False, 4403)
    c = WebsocketCommunicator(URLRouter(websocket_urlpatterns), f"/ws/batches/{batch.pk}/")
    c.scope["user"] = alice
    assert (await c.connect())[0]
    snapshot = await c.receive_json_from(timeout=5)  # the state at connect: nothing missed in between
    assert snapshot["type"] == "order.updated" and snapshot["data"]["status"] == "pending"
    await sync_to_async(services.orders_send_account)(account_id=acc.pk, batch_id=batch.pk)
    msg = await c.receive_json_from(timeout=5)
    assert msg["type"] == "order.updated" and msg["data"]["status"] == "accepted"
    await c.disconnect()
    await sync_to_async(connections.close_all)()


@pytest.mark.django_db
def test_book_actions_through_the_pages(client, alice, charlie, two):
    from accounts.models import TradingAccount
    from trading.models import Order, Position

    a = two[0]
    batch = services.orders_create(
        user=alice,
        accounts=[a],
        legs=[
            services.Leg("SBIN", "NSE", "BUY", 4),
            services.Leg("INFY", "NSE", "BUY", 1, "LIMIT", price=Decimal("5")),
        ],
    )
    services.orders_send_account(account_id=a.pk, batch_id=batch.pk)
    services.orders_poll_account(account_id=a.pk)
    limit = batch.orders.get(symbol="INFY")
    pos = Position.objects.get(account=a, symbol="SBIN")
    # Strangers see nothing and change nothing; state changes never go through GET.
    client.force_login(charlie)
    assert client.post(f"/trading/orders/order/{limit.pk}/cancel/").status_code == 404
    assert client.post(f"/trading/positions/{pos.pk}/close/").status_code == 404
    assert client.post(f"/trading/accounts/{a.pk}/state/", {"state": "halted"}).status_code == 404
    client.force_login(alice)
    assert client.get(f"/trading/orders/order/{limit.pk}/cancel/").status_code == 405
    assert client.get(f"/trading/accounts/{a.pk}/close/").status_code == 405
    # Modify with bad input: a clear error, nothing sent.
    r = client.post(f"/trading/orders/order/{limit.pk}/modify/", {"pricetype": "LIMIT", "quantity": "1", "price": ""})
    assert "A limit price is required" in r.content.decode()
    r = client.post(
        f"/trading/orders/order/{limit.pk}/modify/",
        {"pricetype": "LIMIT", "quantity": "1", "price": "6.5"},
        follow=True,
    )
    assert "modified" in r.content.decode()
    limit.refresh_from_db()
    assert limit.price == Decimal("6.5")
    r = client.post(
        f"/trading/orders/order/{limit.pk}/cancel/",
        {"next": "/trading/books/?tab=orders", "confirmed": "1"},
        follow=True,
    )
    limit.refresh_from_db()
    assert limit.status == Order.Status.CANCELLED and "cancelled" in r.content.decode()
    # Halting from the page refuses new orders; the badge shows on the books.
    r = client.post(f"/trading/accounts/{a.pk}/state/", {"state": "halted", "reason": "lunch"}, follow=True)
    assert TradingAccount.objects.get(pk=a.pk).trading_state == "halted"
    page = client.get(f"/trading/books/?account={a.pk}").content.decode()
    assert "state-halted" in page and "lunch" in page
    assert client.post(f"/trading/accounts/{a.pk}/state/", {"state": "bogus"}).status_code == 302
    assert TradingAccount.objects.get(pk=a.pk).trading_state == "halted"
    # Closing a position on a halted account is an exit, so it is allowed.
    r = client.post(f"/trading/positions/{pos.pk}/close/", {"confirmed": "1"})
    assert r.status_code == 302 and "/trading/orders/" in r["Location"]
    exit_order = Order.objects.get(reduce_only=True)
    assert exit_order.action == "SELL" and exit_order.quantity == 4
    # A repair with stale figures is refused with a message and changes nothing.
    r = client.post(
        f"/trading/accounts/{a.pk}/repair/",
        {"exchange": "NSE", "symbol": "SBIN", "product": "MIS", "ours": "9", "broker": "4"},
        follow=True,
    )
    assert "changed since you looked" in r.content.decode() or "in flight" in r.content.decode()
    pos.refresh_from_db()
    assert pos.quantity == 4


@pytest.mark.django_db(transaction=True)
async def test_a_fill_is_pushed_to_the_owners_open_pages(alice, paper_clean):
    from accounts.routing import websocket_urlpatterns as dashboard_routes

    sim = paper_clean[0]
    acc = await sync_to_async(account_on)(sim, owner=alice, name="filled")
    c = WebsocketCommunicator(URLRouter(dashboard_routes), "/ws/dashboard/")
    c.scope["user"] = alice
    assert (await c.connect())[0]
    batch = await sync_to_async(services.orders_create)(
        user=alice, accounts=[acc], legs=[services.Leg("SBIN", "NSE", "BUY", 2)]
    )
    await sync_to_async(services.orders_send_account)(account_id=acc.pk, batch_id=batch.pk)
    await sync_to_async(services.orders_poll_account)(account_id=acc.pk)
    for _ in range(5):
        msg = await c.receive_json_from(timeout=5)
        if msg["type"] == "position.updated":
            break
    assert msg["type"] == "position.updated"
    assert msg["data"]["key"] == "NSE:SBIN" and msg["data"]["quantity"] == 2
    await c.disconnect()
    await sync_to_async(connections.close_all)()
