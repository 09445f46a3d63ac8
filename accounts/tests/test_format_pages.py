"""The accounts pages print instants as every other page does: "02 Dec 2026, 10:32:29 IST"."""

from __future__ import annotations

import datetime as dt

import pytest

from accounts.models import TradingAccount
from accounts.tests.factories import TradingAccountFactory

AT = dt.datetime(2026, 12, 2, 5, 2, 29, tzinfo=dt.UTC)  # 10:32:29 IST


@pytest.mark.django_db
def test_accounts_list_and_dashboard_show_times_in_the_one_ist_format(client, alice):
    a = TradingAccountFactory.create(owner=alice, name="paper-01")
    TradingAccount.objects.filter(pk=a.pk).update(last_checked_at=AT)
    client.force_login(alice)
    listing = client.get("/accounts/").content.decode()
    assert "02 Dec 2026, 10:32:29 IST" in listing
    assert "a.m." not in listing and "Dec. 2" not in listing
    dashboard = client.get("/").content.decode()
    # Both times on the card ("as of" and "checked") read the same before any script runs.
    assert dashboard.count(">02 Dec 2026, 10:32:29 IST</time>") == 2
