"""Settings, secrets, security headers and deployment files."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys

import pytest
import yaml
from cryptography.fernet import Fernet

from brokersim.testing import ROOT
from core.instance import ensure_secrets


def manage(*args: str, **env: str) -> subprocess.CompletedProcess:
    base = {k: v for k, v in os.environ.items() if k not in ("SECRET_KEY", "ENCRYPTION_KEY", "DATABASE_URL")}
    return subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env={**base, **env}, capture_output=True, text=True, timeout=120
    )


def production_env(tmp_path) -> dict[str, str]:
    return {
        "ALGOMIRROR_MODE": "production",
        "SECRET_KEY": secrets.token_urlsafe(50),
        "ENCRYPTION_KEY": Fernet.generate_key().decode(),
        "ALLOWED_HOSTS": "algomirror.example.com",
        "DATABASE_URL": f"sqlite:///{tmp_path / 'prod.sqlite3'}",
        "INSTANCE_DIR": str(tmp_path / "nothing"),
    }


@pytest.mark.parametrize("missing", ["SECRET_KEY", "ENCRYPTION_KEY"])
def test_production_refuses_to_start_without_secrets(tmp_path, missing):
    env = production_env(tmp_path)
    del env[missing]
    done = manage("check", **env)
    assert done.returncode != 0
    assert f"Production needs {missing} in the environment; refusing to start." in done.stderr
    assert not (tmp_path / "nothing").exists()  # nothing generated in production


def test_check_deploy_is_clean_under_production_settings(tmp_path):
    done = manage("check", "--deploy", "--fail-level", "WARNING", **production_env(tmp_path))
    assert done.returncode == 0, done.stderr
    assert "System check identified no issues (0 silenced)." in done.stdout


def test_embedded_secrets_are_generated_once_with_mode_0600(tmp_path):
    first = ensure_secrets(tmp_path)
    second = ensure_secrets(tmp_path)
    assert first == second and len(first["SECRET_KEY"]) >= 50
    Fernet(first["ENCRYPTION_KEY"].encode())  # a valid key
    assert (tmp_path / "secrets.env").stat().st_mode & 0o777 == 0o600


def test_makemigrations_is_clean():
    done = manage("makemigrations", "--check", "--dry-run")
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.django_db
def test_security_headers(client, settings):
    r = client.get("/auth/login/")
    csp = r.headers["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp and "object-src 'none'" in csp
    assert r.headers["X-Content-Type-Options"] == "nosniff"
    assert r.headers["Referrer-Policy"] == "same-origin"
    assert r.headers["X-Frame-Options"] == "DENY"
    assert "Strict-Transport-Security" not in r.headers  # never over plain HTTP
    settings.SECURE_HSTS_SECONDS = 31536000
    settings.SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    from django.test import Client

    r = Client().get("/auth/login/", secure=True)  # a new handler reads the new settings
    assert r.headers["Strict-Transport-Security"] == "max-age=31536000; includeSubDomains"


@pytest.mark.django_db
def test_pages_have_no_inline_scripts(client, alice):
    import re

    client.force_login(alice)
    for url in ("/", "/accounts/", "/accounts/add/", "/audit/", "/auth/password/change/"):
        html = client.get(url).content.decode()
        assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", html), url
        assert " on" + "click=" not in html and "style=" not in html, url


def test_docker_compose_structure():
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    services = compose["services"]
    assert {"postgres", "redis", "web", "worker", "beat", "feed", "orders", "flower", "migrate"} <= set(services)
    commands = {name: " ".join(s.get("command", [])) for name, s in services.items()}
    assert sum("beat" in c.split() for c in commands.values()) == 1  # exactly one beat
    assert "daphne" in commands["web"] and "run_feed" in commands["feed"]
    for name in ("web", "worker", "beat", "feed", "flower"):
        env = services[name]["environment"]
        assert env["ALGOMIRROR_MODE"] == "production"
        assert env["DATABASE_URL"].startswith("postgres://") and env["REDIS_URL"].startswith("redis://redis")
        assert services[name]["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert all(p.startswith("127.0.0.1:") for s in services.values() for p in s.get("ports", []))


def test_procfile_runs_every_process_once():
    lines = dict(line.split(":", 1) for line in (ROOT / "Procfile").read_text().splitlines() if line.strip())
    assert set(lines) == {"web", "worker", "beat", "feed", "orders", "flower", "brokersim"}
    assert "127.0.0.1" in lines["web"] and "127.0.0.1" in lines["flower"]


def test_env_example_documents_every_variable():
    import re

    documented = set(re.findall(r"^([A-Z_]+)=", (ROOT / ".env.example").read_text(), re.M))
    used = set()
    for path in [
        ROOT / "algomirror" / "settings.py",
        ROOT / "algomirror" / "launcher.py",
        ROOT / "algomirror" / "celery.py",
        ROOT / "Procfile",
    ]:
        text = path.read_text()
        used |= set(re.findall(r'env\.\w+\("([A-Z_]+)"', text))
        used |= set(re.findall(r'_env_or\("([A-Z_]+)"', text))
        used |= set(re.findall(r'env(?:iron)?(?:\.get|\.setdefault)?\(?\[?"([A-Z][A-Z_]+)"', text))
        used |= set(re.findall(r"\$\{([A-Z_]+)\}", text))
    used -= {"PATH", "DJANGO_SETTINGS_MODULE", "PORT"}  # PORT: set by honcho per process
    assert used - documented == set()
