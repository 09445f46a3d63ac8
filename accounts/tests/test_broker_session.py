"""Health that touches the broker (issue 18, point 4): a live OpenAlgo in front of a dead broker
token answers ping, and funds 200 with `data: {}`. Such an account is not Connected: its broker
session is unknown, it takes exits only, and the pages say so — until funds read real again."""

from __future__ import annotations

import pytest

from accounts import services
from accounts.models import Alert, TradingAccount
from trading.services import Leg, OrderRefused, orders_create

from .factories import account_on

Status = TradingAccount.Status
State = TradingAccount.TradingState
REAL = {"availablecash": "1000.50", "collateral": "0", "m2mrealized": "0", "m2munrealized": "0", "utiliseddebits": "0"}
ZEROS = dict.fromkeys(REAL, "0.00")
STORED = {"available_cash": "1000.50", "collateral": "0", "m2m_realized": "0", "m2m_unrealized": "0", "utilised": "0"}


@pytest.mark.parametrize(
    ("data", "previous", "real"),
    [
        (REAL, None, True),
        ({**REAL, "availablecash": 1000.5}, STORED, True),  # sandbox: numbers, not strings
        ({}, None, False),  # Zerodha/Fyers: the broker call failed
        ({}, STORED, False),
        (None, None, False),
        ([], None, False),
        ({"availablecash": "", "collateral": None}, None, False),
        ({"unrelated": "1"}, None, False),
        (ZEROS, None, True),  # a first read of an empty account is just that
        (ZEROS, dict.fromkeys(STORED, "0.00"), True),  # still empty
        (ZEROS, STORED, False),  # everything zero right after real money: a failed read
        ({**ZEROS, "collateral": "5"}, STORED, True),
    ],
)
def test_funds_verdict(data, previous, real):
    assert (services.funds_verdict(data, previous) == "real") is real


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


@pytest.mark.django_db
def test_the_health_check_lifts_only_its_own_reduction(alice, paper_clean):
    """A trader's own REDUCING (or any other reason) is never lifted by funds reading real."""
    sim = paper_clean[2]
    a = services.account_check(account_id=account_on(sim, owner=alice).pk)
    services.account_trading_state_set(user=alice, account_id=a.pk, state=State.REDUCING, reason="my call")
    sim.sim("POST", "profile", {"profile": "dead_token"})
    a = services.account_check(account_id=a.pk)
    assert a.status == Status.BROKER_UNKNOWN and (a.trading_state, a.halt_reason) == (State.REDUCING, "my call")
    sim.sim("POST", "reset")
    a = services.account_check(account_id=a.pk)
    assert a.status == Status.CONNECTED and (a.trading_state, a.halt_reason) == (State.REDUCING, "my call")


@pytest.mark.django_db
def test_dashboard_and_accounts_page_show_the_broker_session_banner(client, alice, paper_clean):
    sim = paper_clean[3]
    a = services.account_check(account_id=account_on(sim, owner=alice, name="Kite-1").pk)
    client.force_login(alice)
    for url in ("/", "/accounts/"):
        assert 'data-banner="session-unknown"' not in client.get(url).content.decode()
    sim.sim("POST", "profile", {"profile": "dead_token"})
    services.account_check(account_id=a.pk)
    for url in ("/", "/accounts/"):
        page = client.get(url).content.decode()
        assert 'data-banner="session-unknown"' in page, url
        assert "Broker session unknown on Kite-1" in page
        assert "new entries are refused (exits only)" in page
        assert "badge-broker_unknown" in page
    sim.sim("POST", "reset")
