"""Finding 8 from trading's side: open positions register their instruments per user, so one
user's bad symbol costs nobody else a price; the repair form adopts no symbol that is not an
instrument."""

from __future__ import annotations

import pytest

from accounts.models import Alert
from accounts.tests.factories import account_on
from marketdata import store
from marketdata.tests.conftest import clear_marketdata_keys
from trading import services as trading
from trading.models import Position
from trading.services import OrderRefused

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _clean_interest():
    clear_marketdata_keys()


def test_the_positions_of_one_user_with_a_bad_symbol_leave_everyone_elses_prices(alice, charlie, paper_clean):
    a = account_on(paper_clean[0], owner=alice)
    c = account_on(paper_clean[1], owner=charlie)
    Position.objects.create(account=a, exchange="NSE", symbol="SBIN", product="MIS", quantity=1)
    Position.objects.create(account=a, exchange="NSE", symbol="WEIRD SYMBOL!", product="MIS", quantity=1)
    Position.objects.create(account=c, exchange="NSE", symbol="INFY", product="MIS", quantity=2)
    trading.positions_register_interest()  # raised ValueError for everyone before
    assert set(store.wanted()) >= {"NSE:SBIN", "NSE:INFY"}
    alert = Alert.objects.get(user=alice, kind=Alert.Kind.PRICES_DROPPED)
    assert "NSE:WEIRD SYMBOL!" in alert.message
    assert not Alert.objects.filter(user=charlie, kind=Alert.Kind.PRICES_DROPPED).exists()
    trading.positions_register_interest()  # the same drop again is not alerted twice
    assert Alert.objects.filter(user=alice, kind=Alert.Kind.PRICES_DROPPED).count() == 1


def test_repair_refuses_a_broker_symbol_that_is_no_instrument(alice, paper_clean):
    account = account_on(paper_clean[0], owner=alice)
    with pytest.raises(OrderRefused, match="not an instrument"):
        trading.position_repair(
            user=alice,
            account_id=account.pk,
            exchange="NSE",
            symbol="SBIN EQ<script>",
            product="MIS",
            expected_ours=0,
            expected_broker=0,
        )
    assert not Position.objects.filter(account=account).exists()
