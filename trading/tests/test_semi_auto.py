"""Semi-auto ("Action Center") accounts (issue 18, point 6), against brokersim's `semi_auto`
profile: placements answer 200 with a pending_order_id and no orderid, modify/cancel/cancel-all/
close answer 403 "… is not allowed in Semi-Auto mode". The account learns its mode from those
replies, shows it, its entries read "awaiting approval at OpenAlgo", and exits to it are refused
up front with an alert (an automatic exit there cannot be guaranteed)."""

from __future__ import annotations

import pytest

from accounts import services as account_services
from accounts.models import Alert, AuditEvent, TradingAccount
from accounts.tests.factories import account_on
from openalgo_client.rest import Outcome, Reason
from trading import services
from trading.models import Order
from trading.services import Leg, OrderRefused
from trading.services.outcome import AWAITING_APPROVAL

Mode = TradingAccount.OrderMode
Status = Order.Status


@pytest.fixture
def semi_auto(alice, paper_clean):
    sim = paper_clean[0]
    account = account_services.account_check(account_id=account_on(sim, owner=alice, name="Action-1").pk)
    sim.sim("POST", "profile", {"profile": "semi_auto"})
    yield account, sim
    sim.sim("POST", "reset")


def send(batch) -> list[Order]:
    for a in set(batch.orders.values_list("account_id", flat=True)):
        services.orders_send_account(account_id=a, batch_id=batch.pk)
    return list(batch.orders.all())


def test_the_two_constants_for_awaiting_approval_agree():
    assert AWAITING_APPROVAL == Order.AWAITING_APPROVAL


@pytest.mark.django_db
def test_an_entry_to_a_semi_auto_account_awaits_approval_and_marks_the_account(client, alice, semi_auto):
    account, sim = semi_auto
    assert account.order_mode == Mode.UNKNOWN
    (order,) = send(services.orders_create(user=alice, accounts=[account], legs=[Leg("SBIN", "NSE", "BUY", 1)]))
    assert (order.status, order.broker_status, order.broker_orderid) == (Status.UNKNOWN, AWAITING_APPROVAL, None)
    assert order.status_label == "Awaiting approval at OpenAlgo"
    assert sim.sim("GET", "profile")["pending_approvals"] == [1]  # queued at OpenAlgo, sent once

    account.refresh_from_db()
    assert account.order_mode == Mode.SEMI_AUTO and account.is_semi_auto
    assert "pending order 1" in account.order_mode_evidence
    assert Alert.objects.filter(account=account, kind=Alert.Kind.SEMI_AUTO).count() == 1
    assert AuditEvent.objects.filter(account=account, action=AuditEvent.Action.ORDER_MODE).exists()

    client.force_login(alice)
    books = client.get("/trading/books/?tab=orders").content.decode()
    assert 'status-unknown">Awaiting approval at OpenAlgo<' in books and 'status-accepted">' not in books
    batch_page = client.get(f"/trading/orders/{order.batch_id}/").content.decode()
    assert "Awaiting approval at OpenAlgo" in batch_page
    for url in ("/", "/accounts/"):
        page = client.get(url).content.decode()
        assert 'data-banner="semi-auto"' in page and "Semi-auto mode at OpenAlgo on Action-1" in page, url
        assert "badge-semi_auto" in page


@pytest.mark.django_db
def test_an_exit_to_a_semi_auto_account_is_refused_up_front_with_an_alert(alice, semi_auto):
    account, sim = semi_auto
    account_services.account_mark_semi_auto(account=account, evidence="order 1: queued for approval at OpenAlgo")
    account.refresh_from_db()
    before = Order.objects.count()
    exit_leg = Leg("SBIN", "NSE", "SELL", 1, reduce_only=True)
    for _ in range(2):  # a trigger firing again: refused again, alerted once
        with pytest.raises(OrderRefused, match="Action-1 is in semi-auto mode at OpenAlgo.*exit cannot be guaranteed"):
            services.orders_create(user=alice, accounts=[account], legs=[exit_leg], kind="exit")
    assert Order.objects.count() == before  # nothing written, nothing sent
    assert sim.sim("GET", "profile")["pending_approvals"] == []
    refused = Alert.objects.filter(account=account, kind=Alert.Kind.SEMI_AUTO_EXIT_REFUSED)
    assert refused.count() == 1
    assert refused.get().level == Alert.Level.CRITICAL and "SELL 1 SBIN" in refused.get().message
    # Entries still go (they wait for approval at OpenAlgo).
    services.orders_create(user=alice, accounts=[account], legs=[Leg("SBIN", "NSE", "BUY", 1)])


@pytest.mark.django_db
def test_semi_auto_refusals_are_not_read_as_a_dead_key(semi_auto):
    account, _ = semi_auto
    client = account_services.account_client(account)
    for res in (
        client.cancelorder(orderid="1", strategy="am1"),
        client.cancelallorder(strategy="algomirror"),
        client.call("closeposition", strategy="algomirror"),
    ):
        assert (res.outcome, res.reason, res.status_code) == (Outcome.REJECTED, Reason.SEMI_AUTO, 403), res
        assert res.shows_semi_auto and "Semi-Auto mode" in res.message
    # The health check does not take it for an expired session either.
    assert account_services.account_check(account_id=account.pk).status == TradingAccount.Status.CONNECTED


@pytest.mark.django_db
def test_a_placement_with_an_orderid_shows_the_account_is_back_in_auto_mode(alice, semi_auto):
    account, sim = semi_auto
    send(services.orders_create(user=alice, accounts=[account], legs=[Leg("SBIN", "NSE", "BUY", 1)]))
    account.refresh_from_db()
    assert account.is_semi_auto
    sim.sim("POST", "profile", {"profile": "clean"})  # the key is switched back to auto at OpenAlgo
    (order,) = send(services.orders_create(user=alice, accounts=[account], legs=[Leg("SBIN", "NSE", "BUY", 1)]))
    assert order.status == Status.ACCEPTED and order.broker_orderid
    account.refresh_from_db()
    assert account.order_mode == Mode.AUTO and f"order {order.pk}" in account.order_mode_evidence
    services.orders_create(user=alice, accounts=[account], legs=[Leg("SBIN", "NSE", "SELL", 1, reduce_only=True)])


@pytest.mark.django_db
def test_a_cancel_all_refused_in_semi_auto_mode_marks_the_account(alice, semi_auto):
    """The 403 on cancel-all (or cancel, modify) is evidence of the mode like a pending_order_id."""
    account, _sim = semi_auto
    out = services.orders_cancel_all(account_id=account.pk)
    assert not out["ok"] and "Semi-Auto" in out["message"]
    account.refresh_from_db()
    assert account.order_mode == Mode.SEMI_AUTO and account.status != "invalid_key"
