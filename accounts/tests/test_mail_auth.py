"""Auth flows that need mail, on the embedded default (no mail server): password reset, e-mail
verification and two-factor never dead-end; mail lands in a local mailbox the admin reads."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import time

import pytest
from allauth.mfa.models import Authenticator
from allauth.mfa.totp.internal.auth import hotp_value
from django.contrib.auth import get_user_model
from django.test import Client
from django.test.utils import _TestState

from brokersim.testing import ROOT

from .browser import chromium, in_thread
from .factories import PASSWORD, UserFactory

NEW_PASSWORD = "Brand-new-passphrase-73"


def configured(**env: str) -> dict:
    """The mail settings a fresh process derives from this environment (no EMAIL_* inherited)."""
    base = {k: v for k, v in os.environ.items() if not k.startswith(("EMAIL_", "DEFAULT_FROM"))}
    code = (
        "import json; from algomirror import settings as s; print(json.dumps({k: str(getattr(s, k, '')) for k in "
        "('EMAIL_BACKEND', 'EMAIL_FILE_PATH', 'EMAIL_HOST', 'EMAIL_PORT', 'EMAIL_USE_TLS', 'EMAIL_HOST_USER', "
        "'DEFAULT_FROM_EMAIL', 'INSTANCE_DIR')}))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], env={**base, **env}, cwd=ROOT, capture_output=True, text=True, check=True
    )
    return json.loads(out.stdout)


def test_embedded_default_keeps_mail_in_the_local_mailbox_and_smtp_is_configurable():
    s = configured(ALGOMIRROR_MODE="embedded")
    assert s["EMAIL_BACKEND"] == "accounts.mailbox.MailboxBackend"
    assert s["EMAIL_FILE_PATH"] == os.path.join(s["INSTANCE_DIR"], "mailbox")
    s = configured(EMAIL_HOST="smtp.example.com", EMAIL_PORT="587", EMAIL_USE_TLS="true", EMAIL_HOST_USER="am")
    assert s["EMAIL_BACKEND"] == "django.core.mail.backends.smtp.EmailBackend"
    assert (s["EMAIL_HOST"], s["EMAIL_PORT"], s["EMAIL_USE_TLS"], s["EMAIL_HOST_USER"]) == (
        "smtp.example.com",
        "587",
        "True",
        "am",
    )
    s = configured(EMAIL_URL="smtp+tls://am:secret@mail.example.com:2525", DEFAULT_FROM_EMAIL="desk@example.com")
    assert s["EMAIL_BACKEND"] == "django.core.mail.backends.smtp.EmailBackend"
    assert (s["EMAIL_HOST"], s["EMAIL_PORT"], s["EMAIL_USE_TLS"]) == ("mail.example.com", "2525", "True")
    assert s["DEFAULT_FROM_EMAIL"] == "desk@example.com"


@pytest.fixture
def default_mail(settings, tmp_path):
    """Mail as the embedded default sends it (the test runner swaps in Django's in-memory backend)."""
    settings.EMAIL_BACKEND = _TestState.saved_data.email_backend
    settings.EMAIL_FILE_PATH = str(tmp_path / "mailbox")
    return tmp_path / "mailbox"


def mails():
    from accounts import mailbox  # imported late: the test is red, not an import error, before it exists

    return mailbox.messages()


def signup(client: Client, username: str = "owner") -> None:
    r = client.post(
        "/auth/signup/",
        {"username": username, "email": f"{username}@example.com", "password1": PASSWORD, "password2": PASSWORD},
    )
    assert r.status_code == 302


@pytest.mark.django_db
def test_password_reset_request_lands_in_the_mailbox_not_a_500(client, default_mail, alice):
    r = client.post("/auth/password/reset/", {"email": "alice@example.com"})
    assert r.status_code == 302
    [mail] = mails()
    assert mail.to == "alice@example.com" and "/auth/password/reset/key/" in mail.body
    assert mail.subject.startswith("AlgoMirror")


@pytest.mark.django_db
def test_resending_the_verification_mail_works_without_a_mail_server(client, default_mail):
    signup(client)
    r = client.post("/auth/email/", {"email": "owner@example.com", "action_send": ""})
    assert r.status_code == 302
    assert any("/auth/confirm-email/" in m.body for m in mails())


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.django_db
def test_an_unreachable_smtp_server_is_a_message_not_a_500(client, settings, alice):
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT, settings.EMAIL_TIMEOUT = "127.0.0.1", closed_port(), 2
    r = client.post("/auth/password/reset/", {"email": "alice@example.com"})
    assert r.status_code == 503  # the mail server is unavailable, said in words; not a 500
    assert "The mail could not be sent" in r.content.decode()


@pytest.mark.django_db
def test_totp_activation_works_without_a_verified_email(client):
    signup(client)  # the first admin: an unverified address, and no mail server to verify it
    client.post("/auth/reauthenticate/", {"password": PASSWORD})
    page = client.get("/auth/2fa/totp/activate/")
    assert page.status_code == 200, page.get("Location")
    code = f"{hotp_value(page.context['form'].secret, int(time.time()) // 30):06d}"
    assert client.post("/auth/2fa/totp/activate/", {"code": code}).status_code == 302
    assert Authenticator.objects.filter(user__username="owner", type="totp").exists()


@pytest.mark.django_db
def test_login_page_offers_signup_only_while_there_is_no_admin(client):
    body = client.get("/auth/login/").content.decode()
    assert "first person to sign up becomes the administrator" in body
    UserFactory(username="boss", admin=True)
    body = client.get("/auth/login/").content.decode()
    assert "sign up" not in body.lower() and "/auth/signup/" not in body
    assert "Your administrator creates accounts" in body and "/auth/password/reset/" in body


@pytest.mark.django_db
def test_mailbox_is_for_staff_only(client, alice, default_mail):
    client.force_login(alice)
    assert client.get("/mailbox/").status_code == 302
    client.force_login(UserFactory(username="boss", admin=True))
    assert "No mail yet" in client.get("/mailbox/").content.decode()


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_password_reset_end_to_end_through_the_mailbox_in_a_browser(live_server, default_mail):
    url = live_server.url
    with chromium(live_server) as b:
        guest = b.page()
        guest.goto(url + "/auth/login/")
        assert "first person to sign up becomes the administrator" in guest.inner_text("main")
        b.shot(guest, "auth-1-login-no-admin")
        boss = in_thread(lambda: UserFactory(username="boss", email="boss@example.com", admin=True))
        in_thread(lambda: UserFactory(username="trader", email="trader@example.com"))
        guest.reload()
        text = guest.inner_text("main")
        assert "sign up" not in text.lower() and "Your administrator creates accounts" in text
        b.shot(guest, "auth-2-login-closed")

        guest.get_by_role("link", name="Forgot your password?").click()
        guest.fill("input[name=email]", "trader@example.com")
        guest.get_by_role("button", name="Send the reset link").click()
        guest.wait_for_url(re.compile(r".*/auth/password/reset/done/$"))
        assert "local mailbox" in guest.inner_text("main")
        b.shot(guest, "auth-3-reset-sent")

        admin = b.page(boss, dark=True)
        admin.goto(url + "/mailbox/")
        row = admin.get_by_role("link", name=re.compile("Reset your password"))
        assert "trader@example.com" in admin.inner_text("main")
        b.shot(admin, "auth-4-mailbox-dark")
        row.click()
        link = admin.locator("a[href*='/auth/password/reset/key/']")
        href = link.get_attribute("href")
        b.shot(admin, "auth-5-mail-dark")

        guest.goto(href)
        guest.fill("input[name=password1]", NEW_PASSWORD)
        guest.fill("input[name=password2]", NEW_PASSWORD)
        guest.get_by_role("button", name=re.compile("Change password", re.I)).click()
        guest.wait_for_url(re.compile(r".*/auth/password/reset/key/done/$"))
        b.shot(guest, "auth-6-reset-done")

        guest.goto(url + "/auth/login/")
        guest.fill("input[name=login]", "trader")
        guest.fill("input[name=password]", NEW_PASSWORD)
        guest.get_by_role("button", name="Sign in").click()
        guest.wait_for_url(url + "/")
        assert in_thread(lambda: get_user_model().objects.get(username="trader").check_password(NEW_PASSWORD))
        assert not b.errors, b.errors
