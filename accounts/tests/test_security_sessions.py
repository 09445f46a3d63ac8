"""Sessions (issue 11, finding 5): idle timeout, absolute lifetime, __Host- cookies over HTTPS, and
the reusable re-authentication guard for sensitive actions."""

from __future__ import annotations

import datetime as dt
import subprocess
import sys

import pytest
import time_machine
from django.http import HttpResponse
from django.test import Client, RequestFactory
from django.urls import include, path

from accounts.security import ensure_recent_auth, require_recent_auth
from brokersim.testing import ROOT

T0 = dt.datetime(2026, 3, 2, 10, 0, tzinfo=dt.UTC)


def login(client: Client) -> None:
    r = client.post("/auth/login/", {"login": "alice", "password": "correct-horse-battery-9"})
    assert r.status_code == 302


def signed_in(client: Client) -> bool:
    return client.get("/accounts/").status_code == 200


@pytest.mark.django_db
def test_a_session_idle_longer_than_the_timeout_is_signed_out(client, alice, settings):
    assert settings.SESSION_IDLE_MINUTES == 30
    with time_machine.travel(T0, tick=False) as clock:
        login(client)
        clock.move_to(T0 + dt.timedelta(minutes=29))
        assert signed_in(client)
        clock.move_to(T0 + dt.timedelta(minutes=58))  # 29 minutes after the last request
        assert signed_in(client)
        clock.move_to(T0 + dt.timedelta(minutes=88, seconds=30))  # 30.5 minutes idle
        r = client.get("/accounts/")
        assert r.status_code == 302 and r.url.startswith("/auth/login/")
        assert "_auth_user_id" not in client.session


@pytest.mark.django_db
def test_background_refreshes_do_not_keep_an_idle_session_alive(client, alice):
    with time_machine.travel(T0, tick=False) as clock:
        login(client)
        for minute in range(5, 35, 5):
            clock.move_to(T0 + dt.timedelta(minutes=minute))
            client.get("/accounts/", headers={"X-Requested-With": "fetch"})
        clock.move_to(T0 + dt.timedelta(minutes=31))
        assert not signed_in(client)


@pytest.mark.django_db
def test_an_active_session_ends_after_the_absolute_lifetime(client, alice, settings):
    assert settings.SESSION_MAX_HOURS == 12
    with time_machine.travel(T0, tick=False) as clock:
        login(client)
        for minutes in range(20, 12 * 60, 20):
            clock.move_to(T0 + dt.timedelta(minutes=minutes))
            assert signed_in(client), minutes
        clock.move_to(T0 + dt.timedelta(hours=12, seconds=5))
        assert not signed_in(client)
    assert settings.SESSION_COOKIE_AGE <= 12 * 3600


@pytest.mark.django_db
def test_a_new_login_starts_a_new_lifetime(client, alice):
    with time_machine.travel(T0, tick=False) as clock:
        login(client)
        clock.move_to(T0 + dt.timedelta(hours=11, minutes=50))
        client.post("/auth/logout/")
        login(client)
        clock.move_to(T0 + dt.timedelta(hours=12, minutes=10))
        assert signed_in(client)


def _cookie_settings(**env: str) -> dict[str, str]:
    code = (
        "from django.conf import settings as s;"
        "print(s.SESSION_COOKIE_NAME, s.CSRF_COOKIE_NAME, s.SESSION_COOKIE_SECURE, s.CSRF_COOKIE_SECURE,"
        " s.SESSION_COOKIE_PATH, s.CSRF_COOKIE_PATH, s.SESSION_COOKIE_DOMAIN, s.CSRF_COOKIE_DOMAIN)"
    )
    done = subprocess.run(
        [sys.executable, "-c", f"import django;django.setup();{code}"],
        cwd=ROOT,
        env={**_base_env(), **env, "DJANGO_SETTINGS_MODULE": "algomirror.settings"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    names = ["session", "csrf", "session_secure", "csrf_secure", "session_path", "csrf_path", "sd", "cd"]
    return dict(zip(names, done.stdout.split(), strict=True))


def _base_env() -> dict[str, str]:
    import os

    return {k: v for k, v in os.environ.items() if k != "HTTPS"}


def test_cookies_carry_the_host_prefix_over_https(tmp_path):
    https = _cookie_settings(HTTPS="true", INSTANCE_DIR=str(tmp_path))
    assert https["session"].startswith("__Host-") and https["csrf"].startswith("__Host-")
    # What the browser demands of a __Host- cookie: Secure, Path=/, no Domain.
    assert https["session_secure"] == https["csrf_secure"] == "True"
    assert https["session_path"] == https["csrf_path"] == "/"
    assert https["sd"] == https["cd"] == "None"
    plain = _cookie_settings(HTTPS="false", INSTANCE_DIR=str(tmp_path))
    assert not plain["session"].startswith("__Host-")  # a browser drops __Host- cookies over plain HTTP


# ---- re-authentication for sensitive actions (applied to host/key changes elsewhere)
@require_recent_auth
def _sensitive(request):
    return HttpResponse("done")


def _request(client: Client, method: str = "get", **data):
    rf = RequestFactory()
    req = getattr(rf, method)("/accounts/1/edit/", data)
    from importlib import import_module

    from django.conf import settings
    from django.contrib.auth import get_user
    from django.contrib.messages.storage.fallback import FallbackStorage

    engine = import_module(settings.SESSION_ENGINE)
    req.session = engine.SessionStore(client.session.session_key)
    req.user = get_user(req)
    req._messages = FallbackStorage(req)
    return req


@pytest.mark.django_db
def test_a_sensitive_action_asks_for_the_password_again_and_then_goes_through(client, alice, settings):
    login(client)
    # Straight after login the password was just given: no second prompt.
    assert _sensitive(_request(client)).content == b"done"
    later = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=settings.ACCOUNT_REAUTHENTICATION_TIMEOUT + 5)
    with time_machine.travel(later):
        r = client.get("/accounts/")
        assert r.status_code == 200
        from allauth.core.exceptions import ReauthenticationRequired

        with pytest.raises(ReauthenticationRequired):
            _sensitive(_request(client))
        # A POST (it may carry an API key) is never stashed in the session: the person is sent to
        # confirm their password and comes back to the form, with nothing changed.
        r = _sensitive(_request(client, "post", api_key="SECRET-KEY-123", host_url="http://x"))
        assert r.status_code == 302 and r.url.startswith("/auth/reauthenticate/?next=")
        assert "SECRET-KEY-123" not in str(dict(client.session.items()))
        r = client.post("/auth/reauthenticate/", {"password": "correct-horse-battery-9"})
        assert r.status_code == 302
        assert _sensitive(_request(client, "post", api_key="k")).content == b"done"
        ensure_recent_auth(_request(client))  # the function form, for a view that decides per request


@pytest.mark.urls("accounts.tests.test_security_sessions")
@pytest.mark.django_db
def test_the_guard_sends_the_browser_through_allauth_reauthentication(client, alice, settings):
    """End to end with allauth's middleware: GET → the reauthenticate page → back to the page."""
    login(client)
    later = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=settings.ACCOUNT_REAUTHENTICATION_TIMEOUT + 5)
    with time_machine.travel(later):
        r = client.get("/sensitive/")
        assert r.status_code == 302 and r.url.startswith("/auth/reauthenticate/")
        r = client.post(r.url, {"password": "correct-horse-battery-9"})
        assert r.status_code == 302 and r.url == "/sensitive/"
        assert client.get("/sensitive/").content == b"done"


urlpatterns = [path("sensitive/", _sensitive), path("", include("algomirror.urls"))]
