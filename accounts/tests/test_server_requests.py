"""Issue 11, finding 2: the server sends OpenAlgo requests only to a normalised URL on an
allowed network, and its error texts say nothing a port scanner could use.

Every target here is on loopback: brokersim, and tiny servers that are not OpenAlgo."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import threading
import time

import pytest
from cryptography.fernet import Fernet

from accounts import services
from accounts.models import AllowedNetwork, TradingAccount
from brokersim.testing import ROOT
from openalgo_client.netpolicy import REFUSED_TEXT

from .factories import account_on


def requests_seen(sim) -> dict:
    return sim.sim("GET", "status")["requests"]


@contextlib.contextmanager
def tcp_server(answer):
    """A loopback TCP server that hands every connection to `answer(conn)`."""
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(8)
    srv.settimeout(0.1)
    stop = threading.Event()

    def loop():
        while not stop.is_set():
            try:
                conn, _ = srv.accept()
            except OSError:
                continue
            with conn:
                conn.settimeout(3)
                with contextlib.suppress(OSError):
                    answer(conn)

    t = threading.Thread(target=loop, daemon=True)
    t.start()
    try:
        yield f"http://127.0.0.1:{srv.getsockname()[1]}"
    finally:
        stop.set()
        t.join(5)
        srv.close()


def http_reply(status: str, body: bytes, ctype: str = "application/json"):
    def answer(conn):
        conn.recv(65536)
        head = f"HTTP/1.1 {status}\r\nContent-Type: {ctype}\r\nContent-Length: {len(body)}\r\nConnection: close\r\n\r\n"
        conn.sendall(head.encode() + body)

    return answer


def banner(conn):  # an SSH or Redis port: not HTTP at all
    conn.sendall(b"SSH-2.0-OpenSSH_9.6\r\n")


def silent(conn):  # accepts and never answers (a filtered or stuck port)
    time.sleep(2)


def closed_port() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{s.getsockname()[1]}"


SECRET_TEXT = b'{"message": "internal: redis at 10.0.0.7, password hunter2"}'


@pytest.mark.django_db
def test_error_texts_are_identical_for_a_closed_port_a_non_http_port_and_other_http_servers(client, alice, settings):
    """Before: "Cannot reach …" for a closed port, "connection broke: RemoteProtocolError" for a
    non-HTTP one, "HTTP 404, unreadable body" or the target's own JSON message for others."""
    settings.OPENALGO_TIMEOUT = 1
    client.force_login(alice)
    answers = {}
    targets = {
        "non-http": banner,
        "silent": silent,
        "html 404": http_reply("404 Not Found", b"<html>nginx</html>", "text/html"),
        "json 400 with a message": http_reply("400 Bad Request", SECRET_TEXT),
        "json 500 with a message": http_reply("500 Internal Server Error", SECRET_TEXT),
        "json 403, not OpenAlgo's": http_reply("403 Forbidden", b'{"detail": "Forbidden"}'),
        "json 200, not OpenAlgo's": http_reply("200 OK", b'{"ok": true, "message": "pong"}'),
    }
    answers["closed port"] = client.post("/accounts/test/", {"host_url": closed_port(), "api_key": "k" * 32}).json()
    for name, answer in targets.items():
        with tcp_server(answer) as url:
            answers[name] = client.post("/accounts/test/", {"host_url": url, "api_key": "k" * 32}).json()
    shown = {(a["ok"], a["status"], a["message"]) for a in answers.values()}
    assert len(shown) == 1, answers
    ok, status, message = shown.pop()
    assert (ok, status) == (False, TradingAccount.Status.DOWN)
    assert message == services.NO_OPENALGO_TEXT
    assert "127.0.0.1" not in message


@pytest.mark.django_db
def test_the_health_check_does_not_keep_a_foreign_servers_message(alice, settings):
    settings.OPENALGO_TIMEOUT = 1
    with tcp_server(http_reply("400 Bad Request", SECRET_TEXT)) as url:
        a = services.account_create(
            owner=alice, name="x", host_url=url, ws_url="ws://127.0.0.1:9", api_key="k" * 32, paper=True
        )
        services.account_check(account_id=a.pk)
    a.refresh_from_db()
    assert a.last_error == services.NO_OPENALGO_TEXT and "hunter2" not in a.last_error


@pytest.mark.django_db
def test_a_query_in_the_host_is_refused_and_nothing_reaches_the_server(client, alice, paper_clean):
    """Before: POST /_sim/reset?a=/api/v1/ping reset brokersim and the test said "Connected"."""
    sim = paper_clean[0]
    sim.ok("ping")
    client.force_login(alice)
    for host in (f"{sim.host}/_sim/reset?a=", f"{sim.host}/_sim/reset#", f"http://x:y@{sim.host[7:]}"):
        r = client.post("/accounts/test/", {"host_url": host, "api_key": sim.api_key})
        assert r.status_code == 400 and not r.json()["ok"], host
    add = client.post(
        "/accounts/add/",
        {"name": "q", "host_url": f"{sim.host}/_sim/reset?a=", "ws_url": sim.ws_url, "api_key": sim.api_key},
    )
    assert "must not contain a query" in add.content.decode()
    assert not TradingAccount.objects.exists()
    assert requests_seen(sim) == {"ping": 1}  # not reset, nothing else arrived


@pytest.mark.django_db
def test_link_local_and_metadata_addresses_are_refused_before_any_connection(client, alice):
    client.force_login(alice)
    for host in ("http://169.254.169.254", "http://[fe80::1]:5000", "http://0.0.0.0:5000", "http://[::ffff:a9fe:a9fe]"):
        r = client.post("/accounts/test/", {"host_url": host, "api_key": "k" * 32}).json()
        assert (r["ok"], r["message"]) == (False, REFUSED_TEXT), host


@pytest.mark.django_db
def test_the_administrator_decides_which_networks_openalgo_may_be_on(client, alice, paper_clean, settings):
    """Production's default allows only public addresses: brokersim on loopback is refused (and
    never sees a request) until the administrator allows it on the admin page."""
    sim = paper_clean[0]
    account = account_on(sim, owner=alice)
    settings.OPENALGO_ALLOWED_NETWORKS = ["public"]
    client.force_login(alice)
    r = client.post("/accounts/test/", {"host_url": sim.host, "api_key": sim.api_key}).json()
    assert (r["ok"], r["message"]) == (False, REFUSED_TEXT)
    services.account_check(account_id=account.pk)
    account.refresh_from_db()
    assert account.last_error == REFUSED_TEXT
    assert requests_seen(sim) == {}

    alice.is_staff = alice.is_superuser = True
    alice.save()
    refused = client.post("/admin/accounts/allowednetwork/add/", {"network": "lan", "note": ""})
    assert "is not public, loopback, private or a network" in refused.content.decode()
    saved = client.post("/admin/accounts/allowednetwork/add/", {"network": "127.0.0.0/8", "note": "brokersim"})
    assert saved.status_code == 302 and AllowedNetwork.objects.get().network == "127.0.0.0/8"
    r = client.post("/accounts/test/", {"host_url": sim.host, "api_key": sim.api_key}).json()
    assert r["ok"], r
    services.account_check(account_id=account.pk)
    account.refresh_from_db()
    assert account.status == TradingAccount.Status.CONNECTED

    AllowedNetwork.objects.all().delete()
    assert not services.account_client(account).ping().ok  # the pooled client obeys it too


def allowed_networks_in(mode: str) -> str:
    env = {k: v for k, v in os.environ.items() if k not in ("OPENALGO_ALLOWED_NETWORKS", "DATABASE_URL")}
    env.update(ALGOMIRROR_MODE=mode, SECRET_KEY="s" * 50, ENCRYPTION_KEY=Fernet.generate_key().decode())
    code = "import django; django.setup(); from django.conf import settings; print(settings.OPENALGO_ALLOWED_NETWORKS)"
    done = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env={**env, "DJANGO_SETTINGS_MODULE": "algomirror.settings"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def test_the_embedded_default_allows_loopback_and_production_does_not():
    assert allowed_networks_in("embedded") == "['public', 'loopback']"
    assert allowed_networks_in("production") == "['public']"
