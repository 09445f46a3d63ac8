"""First-user admin, closed registration, login throttling, audit of auth events, MFA."""

from __future__ import annotations

import threading
import time

import pytest
from allauth.mfa.models import Authenticator
from allauth.mfa.totp.internal.auth import hotp_value
from django.contrib.auth import get_user_model
from django.db import connection
from django.test import Client

from accounts.models import AuditEvent

from .factories import UserFactory

PASSWORD = "Very-long-passphrase-42"


def signup(client: Client, username: str, password: str = PASSWORD):
    return client.post(
        "/auth/signup/",
        {"username": username, "email": f"{username}@example.com", "password1": password, "password2": password},
    )


@pytest.mark.django_db
def test_first_registration_becomes_superuser_then_signup_closes(client):
    r = signup(client, "owner")
    assert r.status_code == 302
    owner = get_user_model().objects.get()
    assert owner.is_superuser and owner.is_staff
    assert AuditEvent.objects.filter(action="admin_created", user=owner).exists()
    other = Client()
    r = signup(other, "intruder")
    assert "Registration is closed" in r.content.decode()
    assert get_user_model().objects.count() == 1
    assert "Registration is closed" in other.get("/auth/signup/").content.decode()


@pytest.mark.django_db
def test_weak_password_is_refused_with_a_clear_message(client):
    r = signup(client, "owner", password="12345678")
    body = r.content.decode()
    assert r.status_code == 200
    assert "This password is too short" in body or "too common" in body
    assert get_user_model().objects.count() == 0


@pytest.mark.django_db(transaction=True)
def test_concurrent_registrations_make_exactly_one_admin():
    n = 6
    barrier = threading.Barrier(n)
    results: list[str] = []
    lock = threading.Lock()

    def register(i: int) -> None:
        c = Client()
        c.get("/auth/signup/")
        barrier.wait()
        r = signup(c, f"racer{i}")
        with lock:
            results.append("closed" if "Registration is closed" in r.content.decode() else str(r.status_code))
        connection.close()

    threads = [threading.Thread(target=register, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    users = get_user_model().objects.all()
    assert users.count() == 1 and users.get().is_superuser
    assert sorted(results) == ["302"] + ["closed"] * (n - 1)


@pytest.mark.django_db
def test_sixth_failed_login_is_locked_out(client, alice):
    for _ in range(5):
        r = client.post("/auth/login/", {"login": "alice", "password": "wrong-password"})
        assert "The username and/or password you specified are not correct" in r.content.decode()
    r = client.post("/auth/login/", {"login": "alice", "password": "correct-horse-battery-9"})
    assert "Too many failed login attempts" in r.content.decode()
    assert "_auth_user_id" not in client.session
    # Another address trying the same username is locked out too (the key limit).
    other = Client(REMOTE_ADDR="10.9.8.7")
    r = other.post("/auth/login/", {"login": "alice", "password": "correct-horse-battery-9"})
    assert "Too many failed login attempts" in r.content.decode()
    assert AuditEvent.objects.filter(action="login_failed").count() == 5


@pytest.mark.django_db
def test_login_logout_are_audited(client, alice):
    r = client.post("/auth/login/", {"login": "alice", "password": "correct-horse-battery-9"})
    assert r.status_code == 302
    client.post("/auth/logout/")
    assert list(AuditEvent.objects.filter(user=alice).values_list("action", flat=True)) == ["logout", "login"]


@pytest.mark.django_db
def test_pages_need_login(client):
    for url in ("/", "/accounts/", "/accounts/add/", "/audit/"):
        r = client.get(url)
        assert r.status_code == 302 and r.url.startswith("/auth/login/")


@pytest.mark.django_db
def test_csrf_is_enforced_on_forms_and_json_mutations(alice):
    c = Client(enforce_csrf_checks=True)
    c.force_login(alice)
    assert c.post("/accounts/test/", {"host_url": "http://127.0.0.1:1"}).status_code == 403
    assert c.post("/accounts/paper/").status_code == 403


@pytest.mark.django_db
def test_totp_two_factor_can_be_enabled(client, alice):
    client.force_login(alice)
    assert client.get("/auth/2fa/totp/activate/").url.startswith("/auth/reauthenticate/")  # password first
    client.post("/auth/reauthenticate/", {"password": "correct-horse-battery-9"})
    page = client.get("/auth/2fa/totp/activate/")
    assert page.status_code == 200
    secret = page.context["form"].secret
    code = f"{hotp_value(secret, int(time.time()) // 30):06d}"
    r = client.post("/auth/2fa/totp/activate/", {"code": code})
    assert r.status_code == 302
    assert Authenticator.objects.filter(user=alice, type="totp").exists()


@pytest.mark.django_db
def test_the_admin_creates_further_users_who_can_log_in(client):
    admin = UserFactory(username="boss", password=PASSWORD, admin=True)
    client.force_login(admin)
    r = client.post(
        "/admin/auth/user/add/",
        {
            "username": "trader2",
            "password1": "Another-long-pass-77",
            "password2": "Another-long-pass-77",
            "usable_password": "true",
        },
    )
    assert r.status_code == 302, r.content.decode()[:500]
    other = Client()
    r = other.post("/auth/login/", {"login": "trader2", "password": "Another-long-pass-77"})
    assert r.status_code == 302 and other.get("/").status_code == 200
