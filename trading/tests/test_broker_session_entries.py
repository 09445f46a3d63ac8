"""A dead broker token behind a live OpenAlgo (issue 18, point 4), seen from the order path:
after one health cycle the account is not Connected, takes exits only, and entries are refused
with the reason — until the broker's funds read real again (brokersim's `dead_token` profile)."""

from __future__ import annotations

import pytest

from accounts import services
from accounts.models import Alert, TradingAccount
from accounts.tests.factories import account_on
from trading.services import Leg, OrderRefused, orders_create

Status = TradingAccount.Status
State = TradingAccount.TradingState


def sbin() -> list[Leg]:
    return [Leg("SBIN", "NSE", "BUY", 1)]


@pytest.mark.django_db
def test_a_dead_broker_token_is_not_connected_within_one_check_refuses_entries_and_recovers(alice, paper_clean):
    sim = paper_clean[0]
    a = services.account_check(account_id=account_on(sim, owner=alice).pk)
    assert a.status == Status.CONNECTED and a.trading_state == State.ACTIVE
    cash = a.funds["available_cash"]
    assert float(cash) > 0

    sim.sim("POST", "profile", {"profile": "dead_token"})
    assert sim.ok("ping")["status"] == "success" and sim.ok("funds")["data"] == {}  # what it looks like
    a = services.account_check(account_id=a.pk)  # one health cycle
    assert a.status == Status.BROKER_UNKNOWN and not a.is_healthy
    assert a.trading_state == State.REDUCING and a.halt_reason == services.BROKER_UNKNOWN_REASON
    assert a.funds["available_cash"] == cash  # never ₹0.00: the last real figures stay
    assert "funds answered without figures" in a.last_error
    with pytest.raises(OrderRefused, match="reducing only: only exits are allowed .*broker session unknown"):
        orders_create(user=alice, accounts=[a], legs=sbin())
    assert not a.orders.exists()

    services.account_check(account_id=a.pk)  # a second bad cycle: still unknown, alerted once
    alerts = Alert.objects.filter(account=a, kind=Alert.Kind.BROKER_SESSION_UNKNOWN)
    assert alerts.count() == 1 and "log in to the broker" in alerts.get().message

    sim.sim("POST", "reset")  # the broker is logged in again
    a = services.account_check(account_id=a.pk)
    assert a.status == Status.CONNECTED and a.trading_state == State.ACTIVE and a.halt_reason == ""
    batch = orders_create(user=alice, accounts=[a], legs=sbin())
    assert batch.orders.count() == 1
