"""Health that touches the broker (issue 18, point 4): a live OpenAlgo in front of a dead broker
token answers ping, and funds 200 with `data: {}`. Such an account is not Connected: its broker
session is unknown, it takes exits only, and the pages say so — until funds read real again."""

from __future__ import annotations

import pytest

from accounts import services
from accounts.models import TradingAccount

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
