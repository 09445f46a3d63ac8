"""Logical duplicates on the order path: a form posted twice, "close everything" run twice, a
repeated trigger. The idempotency key of an order includes its batch, so it cannot catch a second
batch for the same intent; the batch's client token and the running close-out can."""

from __future__ import annotations

import re
import threading
import uuid

import pytest
from django.db import connection, transaction

from accounts.models import AuditEvent
from accounts.tests.factories import account_on
from core.testing import wait_for
from trading import services
from trading.models import Order, OrderBatch, Position
from trading.services import Leg

Status = Order.Status
pytestmark = pytest.mark.django_db

ORDER = {"symbol": "SBIN", "exchange": "NSE", "action": "BUY", "quantity": 5, "pricetype": "MARKET", "product": "MIS"}


@pytest.fixture
def two(alice, paper_clean):
    return [account_on(s, owner=alice) for s in paper_clean[:2]]


def place(alice, account, *legs: Leg) -> OrderBatch:
    """Orders placed and filled at the broker, fills booked: positions to close."""
    batch = services.orders_create(user=alice, accounts=[account], legs=list(legs))
    services.orders_send_account(account_id=account.pk, batch_id=batch.pk)
    for o in batch.orders.filter(status__in=[Status.ACCEPTED, Status.OPEN]):
        services.order_refresh(order_id=o.pk)
    return batch


def tokens(html: str) -> list[str]:
    return re.findall(r'name="client_token" value="([0-9a-f]{32})"', html)


# ------------------------------------------------------------------ orders_create(client_token=)
def test_a_client_token_makes_the_batch_once(alice, two, django_capture_on_commit_callbacks):
    leg = Leg("SBIN", "NSE", "BUY", 2)
    with django_capture_on_commit_callbacks() as first_sends:
        first = services.orders_create(user=alice, accounts=two, legs=[leg], client_token="trigger-42")
    with django_capture_on_commit_callbacks() as second_sends:
        again = services.orders_create(user=alice, accounts=two, legs=[leg], client_token="trigger-42")
    assert again.pk == first.pk and again.repeat and not first.repeat
    assert OrderBatch.objects.count() == 1 and Order.objects.count() == 2
    assert len(first_sends) == 2 and second_sends == []  # the repeat writes and queues nothing
    # No token, or another one: a new batch, as before.
    services.orders_create(user=alice, accounts=two, legs=[leg])
    services.orders_create(user=alice, accounts=two, legs=[leg], client_token="trigger-43")
    assert OrderBatch.objects.count() == 3


def test_a_repeat_is_answered_even_once_the_account_is_halted(alice, two):
    """The repeat of an accepted request returns what was made; it is not a new request to refuse."""
    leg = Leg("SBIN", "NSE", "BUY", 2)
    first = services.orders_create(user=alice, accounts=two, legs=[leg], client_token="t1")
    services.account_trading_state_set(user=alice, account_id=two[0].pk, state="halted", reason="drill")
    two[0].refresh_from_db()
    assert services.orders_create(user=alice, accounts=two, legs=[leg], client_token="t1").pk == first.pk


def test_tokens_are_per_user(alice, charlie, paper_clean):
    mine = account_on(paper_clean[0], owner=alice)
    theirs = account_on(paper_clean[1], owner=charlie)
    leg = Leg("SBIN", "NSE", "BUY", 1)
    a = services.orders_create(user=alice, accounts=[mine], legs=[leg], client_token="same")
    c = services.orders_create(user=charlie, accounts=[theirs], legs=[leg], client_token="same")
    assert a.pk != c.pk and c.orders.get().account_id == theirs.pk


@pytest.mark.django_db(transaction=True)
def test_two_concurrent_submissions_with_one_token_make_one_batch(alice, paper_clean):
    """The second request reads no batch (the first has not committed), inserts, waits on the
    unique index, and gets the first one's batch once that commits."""
    if connection.vendor != "postgresql":
        pytest.skip("needs PostgreSQL's row-level waits on the unique index to order the race")
    account = account_on(paper_clean[0], owner=alice, name="race")
    leg = Leg("SBIN", "NSE", "BUY", 1)
    inserted, release = threading.Event(), threading.Event()
    out: dict = {}

    def first():
        try:
            with transaction.atomic():
                out["first"] = services.orders_create(user=alice, accounts=[account], legs=[leg], client_token="T")
                inserted.set()
                release.wait(10)
        finally:
            connection.close()

    def second():
        try:
            out["second"] = services.orders_create(user=alice, accounts=[account], legs=[leg], client_token="T")
        except Exception as e:  # noqa: BLE001 - the assertion below shows it
            out["second"] = e
        finally:
            connection.close()

    t1 = threading.Thread(target=first)
    t1.start()
    assert inserted.wait(10)
    t2 = threading.Thread(target=second)
    t2.start()

    def second_waits_on_the_index() -> bool:
        with connection.cursor() as cur:
            cur.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'"
            )
            return cur.fetchone()[0] == 1

    assert wait_for(second_waits_on_the_index, 10)
    release.set()
    t1.join(10)
    t2.join(10)
    assert isinstance(out["second"], OrderBatch), out["second"]
    assert out["second"].pk == out["first"].pk and out["second"].repeat
    assert OrderBatch.objects.count() == 1 and Order.objects.count() == 1


# ------------------------------------------------------------------ the order form
def test_the_order_form_carries_a_fresh_token_per_render(client, alice, two):
    client.force_login(alice)
    first = tokens(client.get("/trading/orders/new/").content.decode())
    second = tokens(client.get("/trading/orders/new/").content.decode())
    assert len(first) == 1 and len(second) == 1 and first != second


def test_the_order_form_posted_twice_places_the_order_once(client, alice, two, paper_clean):
    client.force_login(alice)
    data = ORDER | {"accounts": [a.pk for a in two], "client_token": uuid.uuid4().hex, "confirmed": "1"}
    r1 = client.post("/trading/orders/new/", data)
    r2 = client.post("/trading/orders/new/", data)  # a double click, a resubmitted page
    assert r1.status_code == r2.status_code == 302
    assert r2.url == r1.url  # the second answer is the first batch's page
    assert OrderBatch.objects.count() == 1 and Order.objects.count() == 2
    for a in two:
        services.orders_send_account(account_id=a.pk)
    assert [len(s.ledger()) for s in paper_clean[:2]] == [1, 1]  # one order per account at the broker
    assert "already placed" in client.get(r2.url).content.decode()


def test_the_same_form_with_changed_terms_is_a_new_order(client, alice, two):
    """Back, change the quantity, submit: a different order, not a repeat of the first."""
    client.force_login(alice)
    data = ORDER | {"accounts": [two[0].pk], "client_token": uuid.uuid4().hex, "confirmed": "1"}
    r1 = client.post("/trading/orders/new/", data)
    r2 = client.post("/trading/orders/new/", data | {"quantity": 6})
    assert r1.url != r2.url
    assert sorted(Order.objects.values_list("quantity", flat=True)) == [5, 6]


# ------------------------------------------------------------------ close a position
def test_close_position_posted_twice_exits_once(client, alice, two):
    account = two[0]
    place(alice, account, Leg("SBIN", "NSE", "BUY", 4), Leg("INFY", "NSE", "BUY", 1))
    sbin, infy = (Position.objects.get(account=account, symbol=s) for s in ("SBIN", "INFY"))
    client.force_login(alice)
    page = client.get(f"/trading/books/?account={account.pk}").content.decode()
    buttons = dict(re.findall(r'formaction="/trading/positions/(\d+)/close/" name="client_token" value="(\w+)"', page))
    assert buttons.keys() == {str(sbin.pk), str(infy.pk)}
    assert len(set(buttons.values())) == 2  # each Close button its own token
    token = buttons[str(sbin.pk)]
    r1 = client.post(f"/trading/positions/{sbin.pk}/close/", {"client_token": token, "confirmed": "1"})
    r2 = client.post(f"/trading/positions/{sbin.pk}/close/", {"client_token": token, "confirmed": "1"})
    assert r1.status_code == r2.status_code == 302 and r2.url == r1.url
    assert OrderBatch.objects.filter(kind=OrderBatch.Kind.EXIT).count() == 1
    # The token belongs to one row: the same value sent for another position is not a repeat.
    client.post(f"/trading/positions/{infy.pk}/close/", {"client_token": token, "confirmed": "1"})
    assert OrderBatch.objects.filter(kind=OrderBatch.Kind.EXIT).count() == 2


# ------------------------------------------------------------------ close everything
@pytest.fixture
def holding(alice, two):
    account = two[0]
    place(alice, account, Leg("SBIN", "NSE", "BUY", 3), Leg("INFY", "NSE", "BUY", 2))
    return account


def test_close_everything_twice_joins_the_running_close(alice, holding, paper_clean):
    sim = paper_clean[0]
    first = services.account_close_all(user=alice, account_id=holding.pk)
    again = services.account_close_all(user=alice, account_id=holding.pk)  # its orders are not sent yet
    assert again.pk == first.pk
    assert OrderBatch.objects.filter(kind=OrderBatch.Kind.EXIT).count() == 1
    services.orders_send_account(account_id=holding.pk)
    assert [r["action"] for r in sim.ledger()] == ["BUY", "BUY", "SELL", "SELL"]


def test_close_everything_requested_twice_makes_one_batch(alice, holding, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks() as queued:
        services.account_close_request(user=alice, account_id=holding.pk)
        services.account_close_request(user=alice, account_id=holding.pk)
    assert len(queued) == 2  # two requests (no token): two tasks, and the second joins the first
    for _ in queued:
        services.account_close_run(account_id=holding.pk, user_id=alice.pk)
    assert OrderBatch.objects.filter(kind=OrderBatch.Kind.EXIT).count() == 1


def test_a_finished_close_does_not_swallow_the_next_one(alice, holding, paper_clean):
    first = services.account_close_all(user=alice, account_id=holding.pk)
    services.orders_send_account(account_id=holding.pk)
    for o in first.orders.all():
        services.order_refresh(order_id=o.pk)
    assert set(first.orders.values_list("status", flat=True)) == {Status.COMPLETE}
    place(alice, holding, Leg("TCS", "NSE", "BUY", 1))
    second = services.account_close_all(user=alice, account_id=holding.pk)
    assert second.pk != first.pk and list(second.orders.values_list("symbol", flat=True)) == ["TCS"]


def test_a_close_stuck_in_attention_does_not_block_a_new_close(alice, holding):
    """An exit needing attention will not progress by itself: "close everything" again is a new try."""
    first = services.account_close_all(user=alice, account_id=holding.pk)
    first.orders.update(status=Status.ATTENTION)
    assert services.account_close_all(user=alice, account_id=holding.pk).pk != first.pk


def test_a_single_position_exit_running_does_not_stand_in_for_close_everything(alice, holding):
    services.position_close(user=alice, position_id=Position.objects.get(account=holding, symbol="SBIN").pk)
    batch = services.account_close_all(user=alice, account_id=holding.pk)
    assert sorted(batch.orders.values_list("symbol", flat=True)) == ["INFY", "SBIN"]


def test_close_everything_posted_twice_queues_once(client, alice, holding, django_capture_on_commit_callbacks):
    client.force_login(alice)
    page = client.get(f"/trading/books/?tab=orders&account={holding.pk}").content.decode()
    form = re.search(rf'action="/trading/accounts/{holding.pk}/close/".*?</form>', page, re.S)[0]
    (token,) = tokens(form)
    with django_capture_on_commit_callbacks() as queued:
        for _ in range(2):
            assert (
                client.post(
                    f"/trading/accounts/{holding.pk}/close/", {"client_token": token, "confirmed": "1"}
                ).status_code
                == 302
            )
    assert len(queued) == 1
    assert AuditEvent.objects.filter(action=AuditEvent.Action.ACCOUNT_CLOSED, account=holding).count() == 1


@pytest.mark.django_db(transaction=True)
def test_two_workers_closing_one_account_make_one_batch(alice, paper_clean):
    account = account_on(paper_clean[0], owner=alice, name="closing")
    place(alice, account, Leg("SBIN", "NSE", "BUY", 3), Leg("INFY", "NSE", "BUY", 2))
    start = threading.Barrier(2)
    out: list = []

    def run():
        try:
            start.wait(5)
            out.append(services.account_close_run(account_id=account.pk, user_id=alice.pk))
        finally:
            connection.close()

    threads = [threading.Thread(target=run) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert len(out) == 2 and out[0].pk == out[1].pk
    assert OrderBatch.objects.filter(kind=OrderBatch.Kind.EXIT).count() == 1
