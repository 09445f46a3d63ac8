"""Issue 11, finding 3: changing an account's server or key asks for the password again, and the
stored key never goes to a changed server until the user re-enters it or says to send it.

Two brokersim instances: the account's own (paper[0]) and "another server" (paper[1]), whose
request counters show whether anything, the stored key included, ever reached it."""

from __future__ import annotations

import pytest

from accounts import services
from accounts.models import AuditEvent, TradingAccount

from .factories import PASSWORD, account_on


def requests_seen(sim) -> dict:
    return sim.sim("GET", "status")["requests"]


def edit_form(account: TradingAccount, **changes) -> dict:
    d = {
        "name": account.name,
        "broker": account.broker,
        "host_url": account.host_url,
        "ws_url": account.ws_url,
        "api_key": "",
        "is_active": "on",
    }
    return d | changes


def reauthenticate(client) -> None:
    r = client.post("/auth/reauthenticate/", {"password": PASSWORD})
    assert r.status_code == 302, r.content.decode()[:500]


@pytest.mark.django_db
@pytest.mark.parametrize("change", ["host", "ws", "key"])
def test_a_server_or_key_change_without_recent_reauthentication_changes_nothing(client, alice, paper_clean, change):
    """Before: saved at once with the login session alone."""
    own, other = paper_clean[0], paper_clean[1]
    account = account_on(own, owner=alice)
    before = TradingAccount.objects.values().get(pk=account.pk)
    client.force_login(alice)
    changes = {
        "host": {"host_url": other.host, "api_key": other.api_key},
        "ws": {"ws_url": other.ws_url},
        "key": {"api_key": own.api_key},
    }[change]
    r = client.post(f"/accounts/{account.pk}/edit/", edit_form(account, **changes))
    assert r.status_code == 302
    assert r.url == f"/auth/reauthenticate/?next=/accounts/{account.pk}/edit/"
    assert TradingAccount.objects.values().get(pk=account.pk) == before
    assert not AuditEvent.objects.filter(action=AuditEvent.Action.ACCOUNT_CHANGED).exists()
    # The typed key is not parked in the session to replay the POST after the password.
    assert other.api_key not in str(dict(client.session)) and own.api_key not in str(dict(client.session))
    assert requests_seen(other) == {}


@pytest.mark.django_db
def test_a_rename_needs_no_reauthentication(client, alice, paper_clean):
    account = account_on(paper_clean[0], owner=alice)
    client.force_login(alice)
    r = client.post(f"/accounts/{account.pk}/edit/", edit_form(account, name="renamed"))
    assert r.status_code == 302 and r.url == "/accounts/"
    account.refresh_from_db()
    assert account.name == "renamed"


@pytest.mark.django_db
def test_the_stored_key_reaches_a_changed_host_only_once_the_user_says_so(client, alice, paper_clean):
    """Before: changing only the host saved it and the next health check (and the Test button)
    sent the stored key to the new host."""
    own, other = paper_clean[0], paper_clean[1]
    account = account_on(own, owner=alice)
    client.force_login(alice)
    reauthenticate(client)

    moved = edit_form(account, host_url=other.host, ws_url=other.ws_url)
    r = client.post(f"/accounts/{account.pk}/edit/", moved)
    assert r.status_code == 200
    assert "Send my stored key to the new server" in r.content.decode()
    account.refresh_from_db()
    assert (account.host_url, account.ws_url) == (own.host, own.ws_url)
    tested = client.post("/accounts/test/", {"host_url": other.host, "account_id": account.pk}).json()
    assert not tested["ok"] and "only to the server it was saved for" in tested["message"]
    services.account_check(account_id=account.pk)  # the health beat: still the old server
    assert requests_seen(other) == {}
    assert requests_seen(own)["ping"] >= 1
    with pytest.raises(services.StoredKeyToNewServer):
        services.account_update(account=account, host_url=other.host)
    assert requests_seen(other) == {}

    # Confirmed: now it may go there (the key is own's, so the other server refuses it).
    tested = client.post(
        "/accounts/test/", {"host_url": other.host, "account_id": account.pk, "send_stored_key": "1"}
    ).json()
    assert tested["status"] == TradingAccount.Status.INVALID_KEY
    r = client.post(f"/accounts/{account.pk}/edit/", moved | {"send_stored_key": "on"})
    assert r.status_code == 302 and r.url == "/accounts/"
    account.refresh_from_db()
    assert account.host_url == other.host
    services.account_check(account_id=account.pk)
    assert requests_seen(other).get("ping", 0) >= 2


@pytest.mark.django_db
def test_sending_the_stored_key_to_another_server_from_the_test_button_needs_reauthentication(
    client, alice, paper_clean
):
    own, other = paper_clean[0], paper_clean[1]
    account = account_on(own, owner=alice)
    client.force_login(alice)
    r = client.post(
        "/accounts/test/", {"host_url": other.host, "account_id": account.pk, "send_stored_key": "1"}
    ).json()
    assert not r["ok"] and r["reauthenticate"].startswith("/auth/reauthenticate/")
    assert requests_seen(other) == {}
    # The stored key to its own server is what the Test button always did.
    assert client.post("/accounts/test/", {"host_url": own.host, "account_id": account.pk}).json()["ok"]


@pytest.mark.django_db
def test_with_recent_reauthentication_a_new_server_and_key_save(client, alice, paper_clean):
    own, other = paper_clean[0], paper_clean[1]
    account = account_on(own, owner=alice)
    client.force_login(alice)
    reauthenticate(client)
    form = edit_form(account, host_url=other.host, ws_url=other.ws_url, api_key=other.api_key)
    r = client.post(f"/accounts/{account.pk}/edit/", form)
    assert r.status_code == 302 and r.url == "/accounts/"
    account.refresh_from_db()
    assert (account.host_url, account.api_key_last4) == (other.host, other.api_key[-4:])
