"""S6 at the trader's actions: an account whose stored API key no longer decrypts answers cancel,
modify, repair, cancel-all and close-everything with a clear page, and sends nothing to its broker
(brokersim's request counters stay where they were)."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.urls import reverse

from accounts.models import TradingAccount
from accounts.tests.factories import account_on
from trading import services
from trading.models import Order, Position
from trading.services import Leg

pytestmark = pytest.mark.django_db
WORDS = "cannot be decrypted"


def _requests(sim) -> dict:
    return sim.sim("GET", "status")["requests"]


@pytest.fixture
def broken(alice, paper_clean, client):
    """alice's account with an open limit order and a position, then its ciphertext garbled."""
    sim = paper_clean[0]
    account = account_on(sim, owner=alice)
    batch = services.orders_create(
        user=alice,
        accounts=[account],
        legs=[Leg("SBIN", "NSE", "BUY", 2), Leg("INFY", "NSE", "BUY", 1, "LIMIT", price=Decimal("1.00"))],
    )
    services.orders_send_account(account_id=account.pk, batch_id=batch.pk)
    for o in batch.orders.all():
        services.order_refresh(order_id=o.pk)
    limit = batch.orders.get(symbol="INFY")
    assert limit.status == Order.Status.OPEN
    token = account.api_key_encrypted
    TradingAccount.objects.filter(pk=account.pk).update(api_key_encrypted=token[:-8] + "AAAAAAA=")
    client.force_login(alice)
    return account, sim, limit, client


def _flash(client) -> str:
    return " ".join(str(m) for m in client.get(reverse("books")).context["messages"])


def test_cancel_modify_and_repair_with_an_unreadable_key_say_so_and_send_nothing(broken):
    account, sim, limit, client = broken
    before = _requests(sim)

    # Modify first: once halted, a modify is refused for the halt before any key is read.
    r = client.post(
        reverse("order_modify", args=[limit.pk]),
        {"pricetype": "LIMIT", "quantity": 1, "price": "2.00", "confirmed": "1"},
    )
    assert r.status_code == 200 and WORDS in r.content.decode()

    r = client.post(reverse("order_cancel", args=[limit.pk]), {"confirmed": "1"})
    assert r.status_code == 302
    assert WORDS in _flash(client)

    r = client.post(
        reverse("position_repair", args=[account.pk]),
        {"exchange": "NSE", "symbol": "SBIN", "product": "MIS", "ours": 2, "broker": 2, "confirmed": "1"},
    )
    assert r.status_code == 302
    assert WORDS in _flash(client)

    assert _requests(sim) == before  # 0 broker calls
    limit.refresh_from_db()
    assert limit.status == Order.Status.OPEN
    account.refresh_from_db()
    assert account.status == TradingAccount.Status.KEY_UNREADABLE and account.trading_state == "halted"


def test_cancel_all_and_close_everything_with_an_unreadable_key_say_so_and_send_nothing(broken, alice):
    account, sim, _limit, client = broken
    before = _requests(sim)

    r = client.post(reverse("account_cancel_all", args=[account.pk]), {"confirmed": "1"})
    assert r.status_code == 302
    assert WORDS in _flash(client)

    r = client.post(reverse("account_close", args=[account.pk]), {"confirmed": "1"})
    assert r.status_code == 302
    assert WORDS in _flash(client)

    # The worker's side, had it been queued anyway: refused on the ticket, nothing raised.
    ticket = services.account_close_start(user=alice, account_id=account.pk)[0]
    assert services.account_close_tracked(account_id=account.pk, user_id=alice.pk, ticket=ticket) is None
    assert services.close_ticket(ticket)["state"] == "refused"
    with pytest.raises(services.OrderRefused, match=WORDS):
        services.orders_cancel_all(account_id=account.pk)

    assert _requests(sim) == before  # 0 broker calls
    assert Position.objects.get(account=account, symbol="SBIN").quantity == 2
