"""Accounts: encrypted keys, pages, paper accounts, tamper → halt, key rotation, no plaintext anywhere."""

from __future__ import annotations

import io
import json
import logging
from pathlib import Path

import pytest
from django.core.management import call_command
from django.test import override_settings

from accounts import crypto, services
from accounts.models import AuditEvent, TradingAccount

from .factories import account_on


def add(owner, sim, **kw) -> TradingAccount:
    return account_on(sim, owner=owner, broker=sim.info["broker"], **kw)


@pytest.mark.django_db
def test_key_is_encrypted_at_rest_and_only_last4_kept(alice, paper_clean):
    sim = paper_clean[0]
    a = add(alice, sim)
    assert sim.api_key not in a.api_key_encrypted
    assert a.api_key_last4 == sim.api_key[-4:]
    assert crypto.decrypt(a.api_key_encrypted) == sim.api_key
    assert a.is_primary and a.holds_data_role  # the first account takes both roles


@pytest.mark.django_db
def test_one_primary_per_user_is_a_database_constraint(alice, paper_clean):
    from django.db import IntegrityError, transaction

    a = add(alice, paper_clean[0])
    b = add(alice, paper_clean[1], is_primary=True)
    a.refresh_from_db()
    assert (a.is_primary, b.is_primary) == (False, True)
    with pytest.raises(IntegrityError), transaction.atomic():
        TradingAccount.objects.filter(pk=a.pk).update(is_primary=True)


@pytest.mark.django_db
def test_add_page_pings_fills_broker_and_saves(client, alice, paper_clean):
    sim = paper_clean[1]
    client.force_login(alice)
    r = client.post(
        "/accounts/add/",
        {
            "name": "Dhan main",
            "broker": "",
            "host_url": sim.host,
            "ws_url": sim.ws_url,
            "api_key": sim.api_key,
            "is_active": "on",
        },
    )
    assert r.status_code == 302
    a = TradingAccount.objects.get(name="Dhan main")
    assert a.broker == sim.info["broker"]
    assert AuditEvent.objects.filter(action="account_added", account=a).exists()


@pytest.mark.django_db
def test_add_page_refuses_a_wrong_key_with_a_clear_error(client, alice, paper_clean):
    sim = paper_clean[0]
    client.force_login(alice)
    r = client.post(
        "/accounts/add/",
        {"name": "x", "host_url": sim.host, "ws_url": sim.ws_url, "api_key": "f" * 64, "is_active": "on"},
    )
    assert r.status_code == 200
    assert "OpenAlgo rejected this API key." in r.content.decode()
    assert not TradingAccount.objects.exists()
    r = client.post(
        "/accounts/add/",
        {"name": "x", "host_url": "not a url", "ws_url": "http://x", "api_key": "short", "is_active": "on"},
    )
    body = r.content.decode()
    assert "Enter a valid URL." in body and "Enter a ws:// or wss:// URL." in body
    assert not TradingAccount.objects.exists()


@pytest.mark.django_db
def test_connection_test_endpoint(client, alice, paper_clean):
    sim = paper_clean[0]
    client.force_login(alice)
    ok = client.post("/accounts/test/", {"host_url": sim.host, "api_key": sim.api_key}).json()
    assert ok["ok"] and ok["broker"] == sim.info["broker"] and ok["latency_ms"] >= 0
    sim.sim("POST", "session", {"expired": True})
    expired = client.post("/accounts/test/", {"host_url": sim.host, "api_key": sim.api_key}).json()
    assert (expired["ok"], expired["status"]) == (False, "session_expired")
    assert "broker session has expired" in expired["message"]


@pytest.mark.django_db
def test_edit_keeps_the_key_when_left_blank_and_delete_reassigns_primary(client, alice, paper_clean):
    a = add(alice, paper_clean[0])
    b = add(alice, paper_clean[1])
    client.force_login(alice)
    before = a.api_key_encrypted
    r = client.post(
        f"/accounts/{a.pk}/edit/",
        {
            "name": "renamed",
            "broker": a.broker,
            "host_url": a.host_url,
            "ws_url": a.ws_url,
            "api_key": "",
            "is_primary": "on",
            "is_active": "on",
        },
    )
    assert r.status_code == 302
    a.refresh_from_db()
    assert (a.name, a.api_key_encrypted) == ("renamed", before)
    client.post(f"/accounts/{a.pk}/delete/")
    b.refresh_from_db()
    assert b.is_primary and b.holds_data_role
    assert AuditEvent.objects.filter(action="account_deleted", message__contains="renamed").exists()


@pytest.mark.django_db
def test_strangers_cannot_see_or_touch_accounts(client, alice, charlie, paper_clean):
    a = add(alice, paper_clean[0])
    client.force_login(charlie)
    assert client.get(f"/accounts/{a.pk}/edit/").status_code == 404
    assert client.post(f"/accounts/{a.pk}/delete/").status_code == 404
    assert a.name not in client.get("/").content.decode()


@pytest.mark.django_db
def test_paper_accounts_button_reads_brokersim_file(client, alice, paper_clean, tmp_path):
    f = tmp_path / "accounts.json"
    f.write_text(json.dumps([b.info for b in paper_clean[:3]]))
    client.force_login(alice)
    with override_settings(BROKERSIM_ACCOUNTS_FILE=f):
        assert "Add paper accounts" in client.get("/").content.decode()
        client.post("/accounts/paper/")
        client.post("/accounts/paper/")  # twice: nothing duplicated
    assert sorted(TradingAccount.objects.values_list("name", flat=True)) == ["paper-01", "paper-02", "paper-03"]
    with override_settings(BROKERSIM_ACCOUNTS_FILE=tmp_path / "missing.json"):
        r = client.post("/accounts/paper/", follow=True)
    assert "brokersim is not running" in r.content.decode()


@pytest.mark.django_db
def test_tampered_ciphertext_halts_the_account_and_sends_nothing(alice, paper_clean):
    sim = paper_clean[0]
    a = add(alice, sim)
    token = a.api_key_encrypted
    TradingAccount.objects.filter(pk=a.pk).update(
        api_key_encrypted=token[:-6] + ("A" if token[-6] != "A" else "B") + token[-5:]
    )
    sim.sim("POST", "reset")
    a = services.account_check(account_id=a.pk)
    assert a.status == "key_unreadable" and a.trading_state == "halted"
    assert sim.sim("GET", "status")["requests"] == {}
    assert AuditEvent.objects.filter(action="key_unreadable", account=a).count() == 1
    services.account_check(account_id=a.pk)  # stays halted, audited once
    assert AuditEvent.objects.filter(action="key_unreadable", account=a).count() == 1
    assert sim.sim("GET", "status")["requests"] == {}


@pytest.mark.django_db
def test_rotate_encryption_key(alice, paper_clean, settings):
    from cryptography.fernet import Fernet

    a = add(alice, paper_clean[0])
    old_token = a.api_key_encrypted
    new_key = Fernet.generate_key().decode()
    settings.ENCRYPTION_KEYS = [new_key, *settings.ENCRYPTION_KEYS]
    out = io.StringIO()
    call_command("rotate_encryption_key", stdout=out)
    assert "Re-encrypted 1 API key(s)" in out.getvalue()
    a.refresh_from_db()
    assert a.api_key_encrypted != old_token
    settings.ENCRYPTION_KEYS = [new_key]  # the old key can now be dropped
    assert crypto.decrypt(a.api_key_encrypted) == paper_clean[0].api_key
    assert AuditEvent.objects.filter(action="key_rotated").exists()


@pytest.mark.django_db
def test_rotate_generate_rewrites_the_instance_file(alice, paper_clean, settings, tmp_path):
    from core.instance import ensure_secrets, read_env_file

    settings.INSTANCE_DIR = tmp_path
    settings.ENCRYPTION_KEY_FILE = tmp_path / "secrets.env"
    values = ensure_secrets(tmp_path)
    settings.ENCRYPTION_KEYS = [values["ENCRYPTION_KEY"]]
    a = add(alice, paper_clean[0])
    call_command("rotate_encryption_key", "--generate", stdout=io.StringIO())
    new = read_env_file(tmp_path / "secrets.env")["ENCRYPTION_KEY"]
    assert new != values["ENCRYPTION_KEY"] and "," not in new
    assert (tmp_path / "secrets.env").stat().st_mode & 0o777 == 0o600
    settings.ENCRYPTION_KEYS = [new]
    a.refresh_from_db()
    assert crypto.decrypt(a.api_key_encrypted) == paper_clean[0].api_key


@pytest.mark.django_db(transaction=True)
def test_api_key_appears_nowhere_in_plaintext(client, alice, paper_clean, caplog, tmp_path):
    """Add through the page, run a health check, then grep the database dump, logs, pages and API."""
    sim = paper_clean[0]
    caplog.set_level(logging.DEBUG)
    client.force_login(alice)
    client.post(
        "/accounts/add/",
        {"name": "secret-test", "host_url": sim.host, "ws_url": sim.ws_url, "api_key": sim.api_key, "is_active": "on"},
    )
    a = TradingAccount.objects.get(name="secret-test")
    services.account_check(account_id=a.pk)
    client.post("/accounts/test/", {"host_url": sim.host, "account_id": a.pk})
    key = sim.api_key
    dump = io.StringIO()
    call_command("dumpdata", stdout=dump)
    assert key not in dump.getvalue()
    from django.db import connection

    if connection.vendor == "sqlite":
        assert key.encode() not in Path(connection.settings_dict["NAME"]).read_bytes()
    pages = [
        "/",
        "/accounts/",
        f"/accounts/{a.pk}/edit/",
        f"/accounts/{a.pk}/delete/",
        "/audit/",
        f"/admin/accounts/tradingaccount/{a.pk}/change/",
        "/admin/accounts/auditevent/",
        "/api/schema/",
    ]
    alice.is_staff = alice.is_superuser = True
    alice.save()
    for url in pages:
        r = client.get(url)
        assert r.status_code == 200, url
        assert key not in r.content.decode(), url
        assert key[-4:] in r.content.decode() or url in (
            "/",
            "/audit/",
            "/admin/accounts/auditevent/",
            "/api/schema/",
            f"/accounts/{a.pk}/delete/",
        )
    r = client.post("/accounts/test/", {"host_url": sim.host, "account_id": a.pk})
    assert key not in r.content.decode()
    assert key not in caplog.text and key not in "".join(str(r.args) for r in caplog.records)


@pytest.mark.django_db
def test_one_way_to_a_broker_clients_are_cached_per_key_version_and_hold_no_plaintext(alice, paper_clean):
    sim = paper_clean[0]
    account = account_on(sim, owner=alice)
    first = services.account_client(account)
    assert services.account_client(account) is first  # pooled
    assert first.ping().ok
    # The cached client holds a key source over the ciphertext, never the plaintext itself.
    held = [repr(c.cell_contents) for c in (first._api_key.__closure__ or ())]
    assert sim.api_key not in "".join(held) + repr(vars(first))
    # A new key (or a rotation) is a new version: a new client, the old one closed.
    services.account_update(account=account, api_key=sim.api_key)
    account.refresh_from_db()
    second = services.account_client(account)
    assert second is not first and second.ping().ok
    assert first._http.is_closed
    # One client per account (other tests' accounts may be cached too), and no key is plaintext.
    assert [key for key in services._clients if key[0] == account.pk] == [(account.pk, services._key_version(account))]
    assert all(sim.api_key not in key[1] for key in services._clients)


@pytest.mark.django_db
def test_an_unreadable_key_halts_the_account_where_the_client_is_asked_for(alice, paper_clean):
    account = account_on(paper_clean[0], owner=alice)
    TradingAccount.objects.filter(pk=account.pk).update(api_key_encrypted="gAAAAAtampered")
    account.refresh_from_db()
    with pytest.raises(crypto.KeyUnreadable):
        services.account_client(account)
    account.refresh_from_db()
    assert account.status == TradingAccount.Status.KEY_UNREADABLE
    assert account.trading_state == TradingAccount.TradingState.HALTED
