"""The admin door (issue 11, finding 1 and part of 10): /admin/login/ goes through allauth (lockout,
TOTP), admin changes to trading accounts are audited, audit rows cannot be edited in the admin."""

from __future__ import annotations

import time

import pytest
from allauth.mfa.models import Authenticator
from allauth.mfa.totp.internal.auth import generate_totp_secret, hotp_value
from django.test import Client

from accounts.models import AuditEvent, TradingAccount

from .factories import PASSWORD, TradingAccountFactory, UserFactory


def totp_code(secret: str) -> str:
    return f"{hotp_value(secret, int(time.time()) // 30):06d}"


@pytest.fixture
def boss(db):
    return UserFactory(username="boss", admin=True)


@pytest.fixture
def boss_with_totp(boss):
    from allauth.mfa.totp.internal.auth import TOTP

    secret = generate_totp_secret()
    TOTP.activate(boss, secret)
    assert Authenticator.objects.filter(user=boss, type="totp").exists()
    return boss, secret


@pytest.mark.django_db
def test_admin_login_page_hands_over_to_the_allauth_login(client):
    r = client.get("/admin/login/?next=/admin/")
    assert r.status_code == 302
    assert r.url.startswith("/auth/login/?next=")


@pytest.mark.django_db
def test_admin_login_with_the_password_alone_does_not_let_a_totp_superuser_in(client, boss_with_totp):
    boss, secret = boss_with_totp
    # The Django admin form took the password alone and logged the superuser in.
    client.post("/admin/login/?next=/admin/", {"username": "boss", "password": PASSWORD, "next": "/admin/"})
    assert "_auth_user_id" not in client.session
    assert client.get("/admin/").status_code == 302
    # Through allauth the password leads to the second step, and only the code lets them in.
    r = client.post("/auth/login/?next=/admin/", {"login": "boss", "password": PASSWORD})
    assert r.status_code == 302 and r.url.startswith("/auth/2fa/authenticate/")
    assert "_auth_user_id" not in client.session
    r = client.post("/auth/2fa/authenticate/", {"code": totp_code(secret)})
    assert r.status_code == 302 and r.url == "/admin/"
    assert client.get("/admin/").status_code == 200


@pytest.mark.django_db
def test_wrong_admin_passwords_lock_the_superuser_out(client, boss):
    for _ in range(5):
        client.post("/admin/login/", {"username": "boss", "password": "not-the-password"})
        client.post("/auth/login/?next=/admin/", {"login": "boss", "password": "not-the-password"})
    r = Client(REMOTE_ADDR="10.1.2.3").post("/auth/login/", {"login": "boss", "password": PASSWORD})
    assert "Too many failed login attempts" in r.content.decode()
    r = client.post("/admin/login/", {"username": "boss", "password": PASSWORD, "next": "/admin/"})
    assert "_auth_user_id" not in client.session


@pytest.mark.django_db
def test_an_admin_change_of_owner_is_audited_and_the_host_is_not_editable_there(client, boss):
    owner = UserFactory(username="owner1")
    thief = UserFactory(username="thief")
    account = TradingAccountFactory(owner=owner, name="acct-a", host_url="http://127.0.0.1:9")
    client.force_login(boss)
    page = client.get(f"/admin/accounts/tradingaccount/{account.pk}/change/")
    assert page.status_code == 200
    data = {k: v for k, v in page.context["adminform"].form.initial.items() if v is not None}
    data.update({"owner": thief.pk, "host_url": "http://127.0.0.1:19", "name": "acct-b", "_save": "Save"})
    for k in ("is_primary", "holds_data_role", "is_active"):
        if not data.get(k):
            data.pop(k, None)
    r = client.post(f"/admin/accounts/tradingaccount/{account.pk}/change/", data)
    assert r.status_code == 302, r.content.decode()[:2000]
    account.refresh_from_db()
    assert account.owner == thief and account.name == "acct-b"
    # The host (where the stored key is sent) changes only on the account's own edit page, which
    # asks for the password again: never silently from the admin.
    assert account.host_url == "http://127.0.0.1:9"
    ev = AuditEvent.objects.filter(account=account, action=AuditEvent.Action.ACCOUNT_CHANGED).latest("id")
    assert ev.user == boss
    assert ev.details["via"] == "admin"
    assert ev.details["changes"]["owner"] == ["owner1", "thief"]
    assert ev.details["changes"]["name"] == ["acct-a", "acct-b"]
    assert "owner" in ev.message and "boss" in ev.message
    assert client.get("/admin/accounts/tradingaccount/add/").status_code == 403  # added with a key, elsewhere


@pytest.mark.django_db
def test_an_admin_delete_of_a_trading_account_is_audited(client, boss):
    account = TradingAccountFactory(name="acct-gone")
    client.force_login(boss)
    r = client.post(f"/admin/accounts/tradingaccount/{account.pk}/delete/", {"post": "yes"})
    assert r.status_code == 302
    assert not TradingAccount.objects.filter(pk=account.pk).exists()
    ev = AuditEvent.objects.filter(action=AuditEvent.Action.ACCOUNT_DELETED, account_name="acct-gone").get()
    assert ev.user == boss and ev.details["via"] == "admin"


@pytest.mark.django_db
def test_audit_rows_are_read_only_in_the_admin(client, boss):
    client.force_login(boss)
    ev = AuditEvent.objects.create(action=AuditEvent.Action.LOGIN, message="x")
    assert client.get(f"/admin/accounts/auditevent/{ev.pk}/delete/").status_code == 403
    assert client.post(f"/admin/accounts/auditevent/{ev.pk}/delete/", {"post": "yes"}).status_code == 403
    r = client.post(
        "/admin/accounts/auditevent/", {"action": "delete_selected", "_selected_action": [ev.pk], "post": "yes"}
    )
    assert AuditEvent.objects.filter(pk=ev.pk).exists(), r.status_code
    assert client.get("/admin/accounts/auditevent/add/").status_code == 403
    assert client.post(f"/admin/accounts/auditevent/{ev.pk}/change/", {"message": "edited"}).status_code == 403
    ev.refresh_from_db()
    assert ev.message == "x"
