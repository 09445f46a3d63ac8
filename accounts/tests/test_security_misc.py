"""Smaller hardening (issue 11, finding 10): open redirects, CSP base-uri, secrets kept out of error
reports, and an .env.example that does not switch production's HTTPS hardening off."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys

import pytest
from cryptography.fernet import Fernet
from django.test import RequestFactory

from accounts.security import safe_next_url
from brokersim.testing import ROOT

HOSTILE = [
    "https://evil.example/",
    "//evil.example",
    "/\\evil.example",
    "\\\\evil.example",
    "/\\/evil.example",
    "https:evil.example",
    "javascript:alert(1)",
    " //evil.example",
    "http://testserver.evil.example/",
]


@pytest.mark.parametrize(
    ("given", "expected"),
    [(h, "/fallback/") for h in HOSTILE]
    + [("", "/fallback/"), ("/books/?tab=orders", "/books/?tab=orders"), ("/accounts/", "/accounts/")],
)
def test_safe_next_url_keeps_only_local_paths(given, expected):
    req = RequestFactory().post("/x/", {"next": given})
    assert safe_next_url(req, "/fallback/") == expected


@pytest.mark.django_db
@pytest.mark.parametrize("hostile", ["/\\evil.example", "//evil.example", "https://evil.example/"])
def test_books_refresh_never_redirects_off_site(client, alice, hostile):
    client.force_login(alice)
    r = client.post("/trading/books/refresh/", {"next": hostile})
    assert r.status_code == 302 and r.url == "/trading/books/"


@pytest.mark.django_db
@pytest.mark.parametrize("hostile", ["https://evil.example/", "/\\evil.example"])
def test_paper_accounts_never_redirects_off_site(client, alice, settings, tmp_path, hostile):
    settings.BROKERSIM_ACCOUNTS_FILE = tmp_path / "missing.json"
    client.force_login(alice)
    r = client.post("/accounts/paper/", {"next": hostile})
    assert r.status_code == 302 and r.url == "/accounts/"


@pytest.mark.django_db
def test_csp_forbids_base_tags(client):
    csp = client.get("/auth/login/").headers["Content-Security-Policy"]
    assert "base-uri 'none'" in csp


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("url", "data", "field"),
    [
        ("/accounts/add/", {"name": "x", "host_url": "http://127.0.0.1:9", "api_key": "SECRET"}, "api_key"),
        ("/accounts/test/", {"host_url": "http://127.0.0.1:9", "api_key": "SECRET"}, "api_key"),
        ("/auth/reauthenticate/", {"password": "SECRET"}, "password"),
        ("/auth/password/change/", {"oldpassword": "SECRET", "password1": "S", "password2": "S"}, "oldpassword"),
        ("/auth/2fa/totp/activate/", {"code": "123456"}, "code"),
    ],
)
def test_secrets_posted_to_a_view_are_hidden_from_error_reports(client, alice, url, data, field):
    from django.views.debug import SafeExceptionReporterFilter

    client.force_login(alice)
    r = client.post(url, data)
    shown = SafeExceptionReporterFilter().get_post_parameters(r.wsgi_request)
    assert shown[field] != data[field], f"{url} would show {field} in an error report"


@pytest.mark.django_db
def test_the_account_edit_view_hides_the_key_from_error_reports(client, alice):
    from django.views.debug import SafeExceptionReporterFilter

    from .factories import TradingAccountFactory

    account = TradingAccountFactory(owner=alice)
    client.force_login(alice)
    r = client.post(f"/accounts/{account.pk}/edit/", {"name": "x", "api_key": "SECRET"})
    assert SafeExceptionReporterFilter().get_post_parameters(r.wsgi_request)["api_key"] != "SECRET"


def test_env_example_copied_into_production_keeps_https_hardening(tmp_path):
    """Copying .env.example to .env for production (the compose file sets ALGOMIRROR_MODE) must leave
    HTTPS hardening at production's defaults."""
    parsed: dict[str, str] = {}
    for line in (ROOT / ".env.example").read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#") and "=" in line:
            k, v = line.split("=", 1)
            parsed[k.strip()] = v.strip()
    env = {k: v for k, v in os.environ.items() if k not in parsed and k not in ("SECRET_KEY", "ENCRYPTION_KEY")}
    env.update(parsed)
    env.update(
        {
            "ALGOMIRROR_MODE": "production",
            "SECRET_KEY": secrets.token_urlsafe(50),
            "ENCRYPTION_KEY": Fernet.generate_key().decode(),
            "ALLOWED_HOSTS": "algomirror.example.com",
            "DATABASE_URL": f"sqlite:///{tmp_path / 'prod.sqlite3'}",
            "INSTANCE_DIR": str(tmp_path / "instance"),
            "STATIC_ROOT": str(tmp_path / "static"),
            "DJANGO_SETTINGS_MODULE": "algomirror.settings",
        }
    )
    code = (
        "import django;django.setup();from django.conf import settings as s;"
        "print(s.SESSION_COOKIE_SECURE, s.CSRF_COOKIE_SECURE, s.SECURE_SSL_REDIRECT, s.SECURE_HSTS_SECONDS,"
        " s.SECURE_HSTS_INCLUDE_SUBDOMAINS, s.SECURE_HSTS_PRELOAD, s.DEBUG)"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["True", "True", "True", "31536000", "True", "True", "False"]
    done = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_trusted_proxy_count_reaches_allauth_and_compose_sets_it(tmp_path):
    import yaml

    code = "import django;django.setup();from django.conf import settings as s;print(s.ALLAUTH_TRUSTED_PROXY_COUNT)"
    env = {**os.environ, "TRUSTED_PROXY_COUNT": "2", "INSTANCE_DIR": str(tmp_path)}
    env["DJANGO_SETTINGS_MODULE"] = "algomirror.settings"
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "2"
    assert "TRUSTED_PROXY_COUNT=" in (ROOT / ".env.example").read_text()
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    web = compose["services"]["web"]
    assert "TRUSTED_PROXY_COUNT" in web["environment"]
