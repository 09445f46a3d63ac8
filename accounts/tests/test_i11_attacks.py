"""Issue 11, attacked after the merge: a logged-in user (or a stolen session, or nobody) tries to
make the server send a stored key to a host of their choosing, to get around the lockout and the
re-authentication, to read another user's data, to outlive the session limits, and to find a
secret in the logs. Tests named `..._holds` show an attack that failed; the others were red on
main (see the commit) and show the fix.

No test here sends anything to a real external address: refusals are checked before any socket is
opened, with `socket.create_connection` replaced by a recorder that connects nowhere."""

from __future__ import annotations

import datetime as dt
import http.server
import logging
import socket
import threading
import time

import pytest
import time_machine
from allauth.mfa.totp.internal.auth import TOTP, generate_totp_secret, hotp_value
from django.core import mail
from django.test import Client

from accounts import services
from accounts.models import TradingAccount
from openalgo_client import netpolicy
from openalgo_client.rest import OpenAlgoClient, Reason

from .factories import PASSWORD, account_on

T0 = dt.datetime(2026, 3, 2, 10, 0, tzinfo=dt.UTC)
LOCKED = "Too many failed login attempts"


# ---------------------------------------------------------------- helpers
class Connects:
    """Every TCP connection attempted, none made (the outside world, faked)."""

    def __init__(self, monkeypatch, *, allow_loopback: bool = False):
        self.seen: list[tuple] = []
        real = socket.create_connection

        def fake(address, *a, **kw):
            self.seen.append(address)
            if allow_loopback and str(address[0]) in ("127.0.0.1", "::1"):
                return real(address, *a, **kw)
            raise ConnectionRefusedError(f"test: no connection to {address}")

        monkeypatch.setattr(socket, "create_connection", fake)


def login(client: Client, who: str = "alice", password: str = PASSWORD) -> int:
    return client.post("/auth/login/", {"login": who, "password": password}).status_code


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


# ================================================================ SSRF: where the key may go
PUBLIC_ONLY = netpolicy.NetworkPolicy.parse(["public"])


@pytest.mark.parametrize(
    "url",
    [
        "http://0x7f.1:5000",  # hex
        "http://2130706433:5000",  # decimal
        "http://0177.0.0.1:5000",  # octal
        "http://127.1:5000",  # short form
        "http://0x7f000001:5000",
        "http://\u24dbocalhost:5000",  # IDN that maps to "localhost"
        "http://\uff11\uff12\uff17.\uff10.\uff10.\uff11:5000",  # full-width digits
        "http://[::ffff:127.0.0.1]:5000",  # IPv4-mapped
        "http://[::ffff:7f00:1]:5000",
        "http://[::127.0.0.1]:5000",  # IPv4-compatible
        "http://[64:ff9b::7f00:1]:5000",  # NAT64 of loopback
        "http://[::1]:5000",
        "http://localhost.:5000",
        "http://0xa9fea9fe",  # 169.254.169.254, hex
        "http://2852039166",  # 169.254.169.254, decimal
        "http://[::ffff:169.254.169.254]",
        "http://[64:ff9b::a9fe:a9fe]",
        "http://[fd00:ec2::254]",
        "http://0.0.0.0:5000",
        "http://0:5000",
    ],
)
def test_address_spellings_are_judged_by_the_address_they_resolve_to_holds(monkeypatch, url):
    """Every spelling of loopback or the metadata service is refused under a public-only policy, by
    the address it resolves to, before any socket is opened."""
    seen = Connects(monkeypatch)
    try:
        base = netpolicy.normalise_base_url(url)
    except netpolicy.UrlRejected:
        return  # refused as a URL: nothing can be sent either
    client = OpenAlgoClient(base, "k" * 32, policy=PUBLIC_ONLY, timeout=2)
    res = client.ping()
    client.close()
    # Refused by the policy, or (a name this sandbox cannot resolve) never resolved: nothing sent.
    assert res.reason in (Reason.NOT_ALLOWED, Reason.UNREACHABLE), (url, res)
    assert seen.seen == []


@pytest.mark.parametrize("url", ["http://[::ffff:169.254.169.254]", "http://0xa9fea9fe", "http://[fd00:ec2::254]"])
def test_metadata_stays_refused_even_when_the_administrator_allows_everything_holds(monkeypatch, url):
    seen = Connects(monkeypatch)
    everything = netpolicy.NetworkPolicy.parse(["public", "0.0.0.0/0", "::/0"])
    client = OpenAlgoClient(url, "k" * 32, policy=everything, timeout=2)
    assert client.ping().reason is Reason.NOT_ALLOWED
    assert seen.seen == []


def test_a_name_whose_answers_differ_between_lookups_reaches_only_checked_addresses_holds(monkeypatch):
    """DNS rebinding: the first lookup says public, every later one says metadata; and one answer
    mixing both. Only an allowed address is ever connected to."""
    seen = Connects(monkeypatch)
    answers = iter([["203.0.113.7"], ["169.254.169.254"], ["169.254.169.254", "203.0.113.8"]])

    def fake_getaddrinfo(host, port, *a, **kw):
        ips = next(answers, ["169.254.169.254"])
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (ip, port)) for ip in ips]

    monkeypatch.setattr(socket, "getaddrinfo", fake_getaddrinfo)
    for _ in range(3):
        client = OpenAlgoClient("http://rebind.example", "k" * 32, policy=PUBLIC_ONLY, timeout=2)
        client.ping()
        client.close()
    assert {a[0] for a in seen.seen} <= {"203.0.113.7", "203.0.113.8"}
    assert ("169.254.169.254", 80) not in seen.seen


class _Redirector(http.server.BaseHTTPRequestHandler):
    target = "http://169.254.169.254/latest/meta-data/"

    def do_POST(self):  # noqa: N802 (http.server's naming)
        self.rfile.read(int(self.headers.get("content-length") or 0))
        self.send_response(307)
        self.send_header("Location", self.target)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *a):
        pass


def test_a_redirect_from_an_allowed_host_to_a_forbidden_one_is_not_followed_holds(monkeypatch):
    server = http.server.HTTPServer(("127.0.0.1", 0), _Redirector)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        seen = Connects(monkeypatch, allow_loopback=True)
        loopback = netpolicy.NetworkPolicy.parse(["public", "loopback"])
        client = OpenAlgoClient(f"http://127.0.0.1:{server.server_port}", "k" * 32, policy=loopback, timeout=2)
        res = client.ping()
        client.close()
    finally:
        server.shutdown()
        server.server_close()
    assert not res.ok
    assert [a for a in seen.seen if a[0] != "127.0.0.1"] == []
    assert services.public_error(res) == services.NO_OPENALGO_TEXT


def test_an_allowed_host_with_a_forbidden_websocket_url_opens_no_socket_holds(monkeypatch):
    from openalgo_client.ws import BrokerSocket, ConnectError

    seen = Connects(monkeypatch)
    sock = BrokerSocket(
        "ws://[::ffff:169.254.169.254]:80",
        "k" * 32,
        on_frames=lambda: None,
        on_closed=lambda why: None,
        policy=netpolicy.NetworkPolicy.parse(["public", "loopback"]),
    )
    with pytest.raises(ConnectError) as e:
        sock.connect()
    assert netpolicy.REFUSED_TEXT in str(e.value)
    assert seen.seen == []


# ================================================================ the stored key and a moved server
@pytest.mark.django_db
@pytest.mark.parametrize(
    ("field", "secure", "plain"),
    [
        ("host_url", "https://algo.example.com", "http://algo.example.com"),
        ("ws_url", "wss://algo.example.com", "ws://algo.example.com"),
    ],
)
def test_dropping_tls_is_a_server_change_the_password_and_a_confirmation_guard(
    client, alice, paper_clean, field, secure, plain
):
    """Before: https→http (or wss→ws) counted as "the same server": saved with the session alone,
    no re-authentication and no confirmation, and the stored key then travelled in clear text to
    port 80 of that host at the next health check."""
    account = account_on(paper_clean[0], owner=alice)
    TradingAccount.objects.filter(pk=account.pk).update(**{field: secure})
    account.refresh_from_db()
    assert not services.same_server(plain, secure)
    client.force_login(alice)
    r = client.post(f"/accounts/{account.pk}/edit/", edit_form(account, **{field: plain}))
    assert r.status_code == 302 and r.url.startswith("/auth/reauthenticate/")
    account.refresh_from_db()
    assert getattr(account, field) == secure
    with pytest.raises(services.StoredKeyToNewServer):
        services.account_update(account=account, **{field: plain})
    # The Test button with the stored key, likewise.
    if field == "host_url":
        with pytest.raises(services.StoredKeyToNewServer):
            services.account_connection_test(account=account, host_url=plain)


# ================================================================ lockout
@pytest.mark.django_db
def test_the_change_password_form_is_no_faster_password_oracle_than_the_login(alice):
    """Before: /auth/password/change/ checked the old password with check_password, outside the
    lockout (allauth's 5 a minute: 7,200 guesses a day against the login's 480), and the password
    it finds passes the re-authentication that guards the server and key. Now its failures count
    toward the lock like the login's, and the right password is refused during the lock."""
    change = {"password1": "N3w-pass-phrase-77", "password2": "N3w-pass-phrase-77"}
    thief = Client(REMOTE_ADDR="10.9.0.1")
    with time_machine.travel(T0, tick=False) as clock:
        assert login(thief) == 302  # a session taken right after its login: re-authenticated
        for i in range(5):
            clock.move_to(T0 + dt.timedelta(seconds=5 * i))
            r = thief.post("/auth/password/change/", {"oldpassword": f"guess-{i}", **change})
            assert r.status_code == 200
        clock.move_to(T0 + dt.timedelta(seconds=65))  # past allauth's per-minute limit
        r = thief.post("/auth/password/change/", {"oldpassword": PASSWORD, **change})
        assert r.status_code == 200, "the right password went through during the lock"
        assert LOCKED in r.content.decode()
        alice.refresh_from_db()
        assert alice.check_password(PASSWORD)
        # The same lock as the login's, from anywhere.
        r = Client(REMOTE_ADDR="10.9.0.2").post("/auth/login/", {"login": "alice", "password": PASSWORD})
        assert LOCKED in r.content.decode()


@pytest.mark.django_db
def test_the_reauthenticate_form_locks_like_the_login_holds(alice):
    thief = Client(REMOTE_ADDR="10.9.1.1")
    thief.force_login(alice)
    for i in range(5):
        thief.post("/auth/reauthenticate/", {"password": f"guess-{i}"})
    r = thief.post("/auth/reauthenticate/", {"password": PASSWORD})
    assert r.status_code == 200 and LOCKED in r.content.decode()


@pytest.mark.django_db
@pytest.mark.parametrize("spelling", ["ALICE", " alice ", "Alice@EXAMPLE.com", " alice@example.com"])
def test_spellings_of_a_locked_login_stay_locked_holds(alice, spelling):
    for i in range(5):
        Client(REMOTE_ADDR=f"10.9.2.{i}").post("/auth/login/", {"login": "alice", "password": "wrong"})
    r = Client(REMOTE_ADDR="10.9.2.99").post("/auth/login/", {"login": spelling, "password": PASSWORD})
    assert r.status_code == 200 and LOCKED in r.content.decode()


@pytest.mark.django_db
def test_rotating_x_forwarded_for_gains_nothing_with_or_without_trusted_proxies_holds(alice, charlie, settings):
    # No trusted proxy: the header is ignored, one address.
    for i in range(5):
        Client(REMOTE_ADDR="10.9.3.1").post(
            "/auth/login/", {"login": f"nobody{i}", "password": "x"}, headers={"X-Forwarded-For": f"1.1.1.{i}"}
        )
    r = Client(REMOTE_ADDR="10.9.3.1").post(
        "/auth/login/", {"login": "charlie", "password": PASSWORD}, headers={"X-Forwarded-For": "2.2.2.2"}
    )
    assert LOCKED in r.content.decode()
    # One trusted proxy: only the entry it appended counts; what the visitor put before it is noise.
    settings.ALLAUTH_TRUSTED_PROXY_COUNT = 1
    for i in range(5):
        Client(REMOTE_ADDR="10.0.0.254").post(
            "/auth/login/", {"login": f"nobody{i}", "password": "x"}, headers={"X-Forwarded-For": f"9.9.9.{i}, 8.8.8.8"}
        )
    r = Client(REMOTE_ADDR="10.0.0.254").post(
        "/auth/login/", {"login": "charlie", "password": PASSWORD}, headers={"X-Forwarded-For": "7.7.7.7, 8.8.8.8"}
    )
    assert LOCKED in r.content.decode()


@pytest.mark.django_db
def test_totp_codes_cannot_be_guessed_past_five_holds(alice):
    secret = generate_totp_secret()
    TOTP.activate(alice, secret)
    c = Client(REMOTE_ADDR="10.9.4.1")
    r = c.post("/auth/login/", {"login": "alice", "password": PASSWORD})
    assert r.status_code == 302 and r.url.startswith("/auth/2fa/authenticate/")
    right = f"{hotp_value(secret, int(time.time()) // 30):06d}"
    wrong = f"{(int(right) + 1) % 1_000_000:06d}"
    for _ in range(5):
        c.post("/auth/2fa/authenticate/", {"code": wrong})
    # A new password step does not reset the code counter.
    c2 = Client(REMOTE_ADDR="10.9.4.2")
    assert c2.post("/auth/login/", {"login": "alice", "password": PASSWORD}).status_code == 302
    c2.post("/auth/2fa/authenticate/", {"code": right})
    assert "_auth_user_id" not in c2.session


# ================================================================ re-authentication and the mailbox
@pytest.mark.django_db
def test_a_stolen_session_cannot_add_its_own_email_and_reset_the_password(alice):
    """Before: the session alone added an address of the thief's (no password asked), a password
    reset sent to it set a new password, and that password passes the re-authentication that
    guards the server and key."""
    thief = Client(REMOTE_ADDR="10.9.5.1")
    thief.force_login(alice)
    thief.post("/auth/email/", {"email": "mallory@evil.example", "action_add": ""})
    mail.outbox.clear()
    Client(REMOTE_ADDR="10.9.5.2").post("/auth/password/reset/", {"email": "mallory@evil.example"})
    sent_to_thief = [m for m in mail.outbox if "mallory@evil.example" in m.to]
    assert not any("/auth/password/reset/key/" in m.body for m in sent_to_thief)
    assert not alice.emailaddress_set.filter(email="mallory@evil.example").exists()


# ================================================================ URLs the client cannot even parse
@pytest.mark.django_db
@pytest.mark.parametrize(
    "host", ["http://01.2.3.4:5000", "http://999.1.1.1", "http://0177.0.0.1:5000", "http://256.0.0.1"]
)
def test_a_numeric_host_the_http_client_cannot_parse_is_refused_as_typed_not_a_500(client, alice, host):
    """Before: accepted by the URL check, then httpx raised InvalidURL building the client: a 500
    on the add page and the Test button, and a crashing health check for an edited account."""
    client.force_login(alice)
    client.raise_request_exception = False
    r = client.post("/accounts/test/", {"host_url": host, "api_key": "k" * 32})
    assert r.status_code == 400, r.status_code
    r = client.post(
        "/accounts/add/",
        {"name": "n", "host_url": host, "ws_url": "ws://127.0.0.1:8765", "api_key": "k" * 32, "is_active": "on"},
    )
    assert r.status_code == 200 and not TradingAccount.objects.exists()
    # A row stored before the check (or by a migration) is refused by the client, never a crash.
    res = OpenAlgoClient(host, "k" * 32, policy=PUBLIC_ONLY).ping()
    assert res.reason is Reason.NOT_ALLOWED


@pytest.mark.parametrize("host", ["0x7f.1", "2130706433", "127.1", "0177.0.0.1", "1.2.3", "0x7f000001", "1.2.3.4.5"])
def test_only_plain_dotted_quads_are_accepted_as_ipv4(host):
    with pytest.raises(netpolicy.UrlRejected, match="IPv4"):
        netpolicy.normalise_base_url(f"http://{host}:5000")


# ================================================================ sessions
@pytest.mark.django_db
def test_a_background_poll_does_not_keep_an_idle_session_alive(client, alice):
    """Before: the feed page polls status.json every 2 s with a plain fetch (no X-Requested-With),
    which counted as activity: with the page open the idle timeout never came. A browser marks
    every fetch and XHR `Sec-Fetch-Dest: empty`; a GET so marked is not activity."""
    fetch_headers = {"Sec-Fetch-Dest": "empty", "Sec-Fetch-Mode": "cors", "Sec-Fetch-Site": "same-origin"}
    with time_machine.travel(T0, tick=False) as clock:
        assert login(client) == 302
        for minute in range(1, 31):
            clock.move_to(T0 + dt.timedelta(minutes=minute))
            client.get("/marketdata/feed/status.json", headers=fetch_headers)
        clock.move_to(T0 + dt.timedelta(minutes=31))
        r = client.get("/accounts/")
        assert r.status_code == 302 and r.url.startswith("/auth/login/")


def test_every_background_poll_in_the_pages_says_it_is_one():
    """The pages' own timers mark their requests (over plain http a browser sends no Sec-Fetch-*)."""
    from django.conf import settings

    js = settings.BASE_DIR / "static" / "js"
    for name in ("feed_monitor.js", "books.js"):
        text = (js / name).read_text()
        calls = text.count("fetch(")
        assert calls and text.count('"X-Requested-With": "fetch"') >= calls, name


# ================================================================ other users' data
@pytest.mark.django_db
def test_another_users_account_looks_like_no_account_holds(client, alice, charlie, paper_clean):
    theirs = account_on(paper_clean[0], owner=charlie)
    client.force_login(alice)
    for url in (f"/accounts/{theirs.pk}/edit/", f"/accounts/{theirs.pk}/delete/", "/accounts/999999/edit/"):
        assert client.get(url).status_code == 404
    r = client.post("/accounts/test/", {"host_url": theirs.host_url, "account_id": theirs.pk, "send_stored_key": "on"})
    assert r.status_code == 404
    r = client.post("/accounts/test/", {"host_url": theirs.host_url, "account_id": 999999})
    assert r.status_code == 404
    assert client.post(f"/accounts/{theirs.pk}/data-role/").status_code == 404
    page = client.get(f"/audit/?account={theirs.pk}").content.decode()
    assert theirs.name not in page


# ================================================================ secrets in the logs
@pytest.mark.django_db
def test_no_key_password_or_totp_secret_reaches_the_logs_holds(client, alice, paper_clean, caplog):
    sim = paper_clean[0]
    secret = generate_totp_secret()
    for name in (None, "httpx", "httpcore", "django", "allauth", "openalgo_client", "accounts", "celery"):
        caplog.set_level(logging.DEBUG, logger=name)
    Client(REMOTE_ADDR="10.9.6.1").post("/auth/login/", {"login": "alice", "password": "wrong-" + PASSWORD})
    assert login(client) == 302
    client.post("/auth/reauthenticate/", {"password": PASSWORD})
    client.post("/accounts/test/", {"host_url": sim.host, "api_key": sim.api_key})
    client.post(
        "/accounts/add/",
        {"name": "logged", "host_url": sim.host, "ws_url": sim.ws_url, "api_key": sim.api_key, "is_active": "on"},
    )
    account = TradingAccount.objects.get(name="logged")
    services.account_check(account_id=account.pk)
    client.post("/accounts/test/", {"host_url": sim.host, "account_id": account.pk})
    client.post(f"/accounts/{account.pk}/edit/", edit_form(account, api_key=sim.api_key))
    TOTP.activate(alice, secret)
    text = "\n".join(r.getMessage() + repr(r.args) + str(r.__dict__) for r in caplog.records)
    assert caplog.records  # something was logged at all
    for s in (sim.api_key, PASSWORD, secret, account.api_key_encrypted):
        assert s not in text
