"""Login lockout (issue 11, finding 4): five failures lock for 15 minutes from the last one, per
account (whichever spelling) and per client address; the client address behind trusted proxies."""

from __future__ import annotations

import datetime as dt

import pytest
import time_machine
from django.test import Client

from .factories import PASSWORD

T0 = dt.datetime(2026, 3, 2, 10, 0, tzinfo=dt.UTC)
LOCKED = "Too many failed login attempts"


def attempt(client: Client, login: str, password: str) -> str:
    r = client.post("/auth/login/", {"login": login, "password": password})
    if r.status_code == 302:
        return "in"
    return "locked" if LOCKED in r.content.decode() else "wrong"


def fresh(ip: str = "10.0.0.1", **extra) -> Client:
    return Client(REMOTE_ADDR=ip, **extra)


@pytest.mark.django_db
def test_lock_lasts_15_minutes_from_the_last_failure_not_a_sliding_window(alice):
    with time_machine.travel(T0, tick=False) as clock:
        for minute in (0, 1, 2, 3, 14):
            clock.move_to(T0 + dt.timedelta(minutes=minute))
            # A new address each time: this is the per-account lock.
            assert attempt(fresh(f"10.0.1.{minute}"), "alice", "wrong-password") == "wrong"
        for minute in (14.5, 15.5, 20, 28.9):
            clock.move_to(T0 + dt.timedelta(minutes=minute))
            assert attempt(fresh("10.0.2.1"), "alice", "correct-horse-battery-9") == "locked", minute
        clock.move_to(T0 + dt.timedelta(minutes=29, seconds=1))
        assert attempt(fresh("10.0.2.1"), "alice", "correct-horse-battery-9") == "in"


@pytest.mark.django_db
def test_failures_15_minutes_apart_do_not_add_up(alice):
    with time_machine.travel(T0, tick=False) as clock:
        for i in range(8):
            clock.move_to(T0 + dt.timedelta(minutes=16 * i))
            assert attempt(fresh(f"10.0.3.{i}"), "alice", "wrong-password") == "wrong"
        assert attempt(fresh("10.0.3.99"), "alice", "correct-horse-battery-9") == "in"


@pytest.mark.django_db
def test_username_and_email_count_toward_one_lock(alice):
    spellings = ["alice", "alice@example.com", "ALICE", "Alice@Example.com", "alice"]
    for i, login in enumerate(spellings):
        assert attempt(fresh(f"10.0.4.{i}"), login, "wrong-password") == "wrong"
    for login in ("alice", "alice@example.com"):
        assert attempt(fresh("10.0.4.200"), login, "correct-horse-battery-9") == "locked"


@pytest.mark.django_db
def test_one_address_guessing_many_accounts_is_locked_out(alice):
    c = fresh("10.0.5.1")
    for i in range(5):
        assert attempt(c, f"nobody{i}", "wrong-password") == "wrong"
    assert attempt(c, "alice", "correct-horse-battery-9") == "locked"
    assert attempt(fresh("10.0.5.2"), "alice", "correct-horse-battery-9") == "in"


@pytest.mark.django_db
def test_a_success_does_not_reset_the_address_count(alice, charlie):
    """An attacker with a login of their own cannot wipe their address's failures by logging in."""
    c = fresh("10.0.6.1")
    for _ in range(4):
        assert attempt(c, "alice", "wrong-password") == "wrong"
        c = fresh("10.0.6.1")
        assert attempt(c, "charlie", "another-horse-battery-7") == "in"
        c = fresh("10.0.6.1")
    assert attempt(c, "alice", "wrong-password") == "wrong"
    assert attempt(fresh("10.0.6.1"), "charlie", "another-horse-battery-7") == "locked"


@pytest.mark.django_db
def test_reauthentication_failures_count_toward_the_account_lock(alice):
    c = fresh("10.0.7.1")
    c.force_login(alice)
    for _ in range(5):
        c.post("/auth/reauthenticate/", {"password": "wrong-password"})
    assert attempt(fresh("10.0.7.2"), "alice", "correct-horse-battery-9") == "locked"


@pytest.mark.django_db
def test_behind_a_trusted_proxy_visitors_are_told_apart_by_x_forwarded_for(alice, settings):
    settings.ALLAUTH_TRUSTED_PROXY_COUNT = 1
    proxy = "172.18.0.1"
    attacker = fresh(proxy, HTTP_X_FORWARDED_FOR="203.0.113.9")
    for i in range(5):
        assert attempt(attacker, f"nobody{i}", "wrong-password") == "wrong"
    assert attempt(attacker, "alice", "correct-horse-battery-9") == "locked"
    # A forged left-hand entry does not help: the proxy appends the real address on the right.
    forged = fresh(proxy, HTTP_X_FORWARDED_FOR="198.51.100.1, 203.0.113.9")
    assert attempt(forged, "alice", "correct-horse-battery-9") == "locked"
    # Another visitor through the same proxy is not locked out with the attacker.
    assert attempt(fresh(proxy, HTTP_X_FORWARDED_FOR="203.0.113.10"), "alice", "correct-horse-battery-9") == "in"


@pytest.mark.django_db
def test_without_trusted_proxies_x_forwarded_for_is_ignored(alice):
    for i in range(5):
        c = fresh("10.0.8.1", HTTP_X_FORWARDED_FOR=f"203.0.113.{i}")
        assert attempt(c, f"nobody{i}", "wrong-password") == "wrong"
    c = fresh("10.0.8.1", HTTP_X_FORWARDED_FOR="203.0.113.77")
    assert attempt(c, "alice", "correct-horse-battery-9") == "locked"


@pytest.mark.django_db
def test_the_audit_log_records_the_client_address_behind_the_proxy(alice, settings):
    from accounts.models import AuditEvent

    settings.ALLAUTH_TRUSTED_PROXY_COUNT = 1
    attempt(fresh("172.18.0.1", HTTP_X_FORWARDED_FOR="203.0.113.5"), "alice", PASSWORD)
    assert AuditEvent.objects.get(action="login").ip_address == "203.0.113.5"
