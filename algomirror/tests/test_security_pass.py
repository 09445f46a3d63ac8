"""The automated security pass (issue 11) and the every-page sweep (issue 19).

Every URL in the URL conf and every WebSocket route in the ASGI app is found by walking them, so
a URL added later is covered without touching this file. Path parameters are filled with the ids
of a victim's real objects (an account on brokersim with a filled and a resting order, its
position, a close-out ticket, a mail in the local mailbox, calendar entries, admin rows); a URL
whose parameters cannot be filled fails `test_every_url_is_covered` until FILL learns them, and a
URL that answers an anonymous visitor must be listed in PUBLIC with the reason.

- anonymous: every non-public URL (GET and POST) ends at a login page or 403/404/405;
  no response anywhere carries the victim's data;
- as another user: every URL holding the victim's ids answers 404/403/405 (or a login/re-auth
  page), GET and POST (confirmed, with the victim's ids in the body too); the victim's rows and
  broker ledger are unchanged afterwards;
- GET never acts: every URL requested with GET (and `?confirmed=1`) as the owner leaves every
  row and the broker's ledger as they were, and never logs the user out;
- every page as the admin (the victim is a superuser): no 500, each GET page renders;
- without CSRF: every POST answers 403;
- every WebSocket route: refused anonymously, with a foreign Origin, without an Origin, and for
  another user's object; accepted for the owner (so refusals are not the harness's doing).
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field
from decimal import Decimal
from urllib.parse import urlsplit

import pytest
from allauth.account.models import EmailAddress
from asgiref.sync import sync_to_async
from django.apps import apps
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.contenttypes.models import ContentType
from django.core import mail as django_mail
from django.db import connections
from django.http import HttpResponseServerError
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver, resolve
from django.urls.exceptions import Resolver404
from django.utils import timezone

from accounts.models import TradingAccount
from accounts.tests.factories import UserFactory, account_on
from marketdata import services as md_services
from trading import services
from trading.models import Order, Position
from trading.services import Leg

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

# URLs anyone may open, and why. Keys are URL names (namespaced: "admin:login").
PUBLIC = {
    "account_login": "the login form",
    "account_signup": "registration (closed after the first admin: says so)",
    "account_inactive": "the 'account inactive' notice after a refused login",
    "account_logout": "logging out; anonymous visitors are sent on",
    "account_reset_password": "password reset request form (sends mail only to a known address)",
    "account_reset_password_done": "'reset mail sent' notice",
    "account_reset_password_from_key": "reset link landing: the key in the URL is the credential",
    "account_reset_password_from_key_done": "'password changed' notice",
    "account_confirm_email": "email verification link landing: the key is the credential",
    "account_email_verification_sent": "'verification mail sent' notice",
    "account_confirm_login_code": "login-by-code step of the login flow (needs a pending login)",
    "mfa_authenticate": "second step of the login flow (needs a pending login)",
    "admin:login": "the admin login form",
    "admin:jsi18n": "the admin's static translation catalog (no data)",
    "api-schema": "the API's description (routes and fields; no user data)",
}

# Where a refused request may be sent: the login pages and re-authentication.
LOGIN_VIEWS = {"account_login", "admin:login", "mfa_authenticate"}
REFUSAL_VIEWS = LOGIN_VIEWS | {"account_reauthenticate", "mfa_reauthenticate"}

REDIRECT = (301, 302, 303, 307, 308)


@dataclass(frozen=True)
class Endpoint:
    route: str  # the full route as written in the URL conf, e.g. "trading/orders/<int:pk>/"
    name: str | None  # the namespaced URL name, None for an unnamed pattern
    view: str

    @property
    def key(self) -> str:
        return self.name or self.route


def _walk(patterns, prefix: str = "", ns: str | None = None):
    for p in patterns:
        if isinstance(p, URLResolver):
            inner = f"{ns}:{p.namespace}" if ns and p.namespace else (p.namespace or ns)
            yield from _walk(p.url_patterns, prefix + str(p.pattern), inner)
        elif isinstance(p, URLPattern):
            name = f"{ns}:{p.name}" if ns and p.name else p.name
            yield Endpoint(prefix + str(p.pattern), name, p.lookup_str)


def endpoints() -> list[Endpoint]:
    return list(_walk(get_resolver().url_patterns))


# ------------------------------------------------------------------ the victim's world
@dataclass
class World:
    owner: object
    mallory: object
    account: TradingAccount
    mallory_account: TradingAccount
    batch_id: int
    order_id: int
    position_id: int
    ticket: str
    mail_id: str
    calendar: dict[str, int]
    broker: object
    markers: list[str] = field(default_factory=list)


@pytest.fixture
def world(paper_clean, settings, tmp_path) -> World:
    settings.EMAIL_BACKEND = "accounts.mailbox.MailboxBackend"
    settings.EMAIL_FILE_PATH = str(tmp_path / "mail")
    owner = UserFactory(username="victim-owner-q7", email="victim-q7@example.com", admin=True)
    EmailAddress.objects.create(user=owner, email=owner.email, primary=True, verified=True)  # as signing up does
    mallory = UserFactory(username="mallory")
    sim = paper_clean[0]
    account = account_on(sim, owner=owner, name="victim-acct-q7")
    mallory_account = account_on(paper_clean[1], owner=mallory, name="mallory-acct")
    filled = services.orders_create(user=owner, accounts=[account], legs=[Leg("SBIN", "NSE", "BUY", 2)])
    services.orders_send_account(account_id=account.pk, batch_id=filled.pk)
    resting = services.orders_create(
        user=owner,
        accounts=[account],
        legs=[Leg("SBIN", "NSE", "BUY", 1, "LIMIT", "MIS", Decimal("800"))],  # far below: it rests
    )
    services.orders_send_account(account_id=account.pk, batch_id=resting.pk)
    order = Order.objects.get(batch=resting)
    position = Position.objects.filter(account=account).first() or Position.objects.create(
        account=account, symbol="SBIN", exchange="NSE", product="MIS", quantity=2, average_price=Decimal("900")
    )
    ticket, _ = services.account_close_start(user=owner, account_id=account.pk)
    django_mail.send_mail("Reset for victim-q7", "secret link for victim-q7", "noreply@example.com", [owner.email])
    mail_id = sorted((tmp_path / "mail").glob("*.eml"))[-1].stem
    holiday = md_services.holiday_add(date=_future(30), name="Security holiday", market="NSE")
    special = md_services.special_add(
        date=_future(31), name="Security special", market="NSE", start=dt.time(9, 15), end=dt.time(10, 15)
    )
    w = World(
        owner=owner,
        mallory=mallory,
        account=account,
        mallory_account=mallory_account,
        batch_id=filled.pk,
        order_id=order.pk,
        position_id=position.pk,
        ticket=ticket,
        mail_id=mail_id,
        calendar={"holiday": holiday.pk, "special": special.pk},
        broker=sim,
    )
    w.markers = [account.name, sim.api_key, sim.host, owner.username, owner.email]
    return w


def _future(days: int) -> dt.date:
    d = timezone.localdate() + dt.timedelta(days=days)
    while d.weekday() >= 5:
        d += dt.timedelta(days=1)
    return d


# ------------------------------------------------------------------ filling parameters
PARAM = re.compile(r"<(?:(?P<conv>\w+):)?(?P<name>\w+)>|\(\?P<(?P<rname>\w+)>(?P<rx>[^()]*)\)")

# `pk` by the literal segment before it: a new URL under these prefixes is filled by itself.
PK_BY_SEGMENT = {
    "accounts": lambda w: w.account.pk,
    "orders": lambda w: w.batch_id,
    "order": lambda w: w.order_id,
    "positions": lambda w: w.position_id,
    "batches": lambda w: w.batch_id,
}
# Other parameters by name.
BY_NAME = {
    "account_id": lambda w: w.account.pk,
    "ticket": lambda w: w.ticket,
    "mail_id": lambda w: w.mail_id,
    # allauth's emailed keys: public landing pages, any value does
    "key": lambda w: "0-nokey",
    "uidb36": lambda w: "0",
}


class Unfillable(Exception):
    pass


def _admin_object(model) -> str:
    obj = model._default_manager.order_by("pk").first()
    return str(obj.pk) if obj is not None else "0"


def _value(ep: Endpoint, name: str, before: str, filled: dict, w: World) -> str:
    if ep.name and ep.name.startswith("admin:") or (ep.name is None and ep.route.startswith("admin/")):
        model_route = re.match(r"admin/(\w+)/(\w+)/", ep.route)
        if name == "content_type_id":
            return str(ContentType.objects.get_for_model(TradingAccount).pk)
        if name == "object_id" and "content_type_id" in filled:
            return str(w.account.pk)
        if name in ("object_id", "id") and model_route:
            try:
                return _admin_object(apps.get_model(model_route[1], model_route[2]))
            except LookupError:
                pass
        if name == "app_label":
            return "accounts"
        if name == "url":
            return "no-such-page/"
    if name == "kind":
        return filled["kind"]
    if name == "pk" and "kind" in filled:
        return str(w.calendar[filled["kind"]])
    segment = before.rstrip("/").rsplit("/", 1)[-1]
    if name == "pk" and segment in PK_BY_SEGMENT:
        return str(PK_BY_SEGMENT[segment](w))
    if name in BY_NAME:
        return str(BY_NAME[name](w))
    raise Unfillable(f"{ep.route} ({ep.key}): no value for <{name}>; teach FILL (PK_BY_SEGMENT or BY_NAME)")


def paths(ep: Endpoint, w: World) -> list[str]:
    """The concrete paths for `ep`, its parameters filled with the victim's objects."""
    kinds = [{"kind": k} for k in sorted(w.calendar)] if "<str:kind>" in ep.route else [{}]
    out = []
    for preset in kinds:
        filled = dict(preset)
        parts, pos = [], 0
        for m in PARAM.finditer(ep.route):
            parts.append(ep.route[pos : m.start()])
            name = m["name"] or m["rname"]
            filled[name] = _value(ep, name, "".join(parts), filled, w)
            if m["rx"] is not None and not re.fullmatch(m["rx"], filled[name]):
                raise Unfillable(f"{ep.route}: {filled[name]!r} does not match ({m['rx']})")
            parts.append(filled[name])
            pos = m.end()
        parts.append(ep.route[pos:])
        out.append("/" + "".join(parts).replace("^", "").replace("$", ""))
    return out


def all_paths(w: World) -> list[tuple[Endpoint, str]]:
    return [(ep, p) for ep in endpoints() for p in paths(ep, w)]


# ------------------------------------------------------------------ judging responses
def _refused_redirect(resp, views=REFUSAL_VIEWS) -> bool:
    if resp.status_code not in REDIRECT:
        return False
    try:
        return resolve(urlsplit(resp["Location"]).path).view_name in views
    except Resolver404:
        return False


def _request(client: Client, method: str, path: str, data=None):
    """The response; what would be a 500 (the test client re-raises it) as a 500 naming the error."""
    try:
        return client.get(path, data) if method == "GET" else client.post(path, data or {})
    except Exception as e:
        return HttpResponseServerError(f"{type(e).__name__}: {e}")


def _follow(client: Client, method: str, path: str, data=None, hops: int = 3):
    """The response, following same-site redirects that do not end at a refusal (an admin
    RedirectView, admin:index → login)."""
    resp = _request(client, method, path, data if method == "POST" else None)
    for _ in range(hops):
        if resp.status_code not in REDIRECT or _refused_redirect(resp):
            break
        target = urlsplit(resp["Location"])
        if target.netloc and target.netloc != "testserver":
            break
        resp = _request(client, "GET", target.path + (f"?{target.query}" if target.query else ""))
    return resp


def _body(resp) -> str:
    if getattr(resp, "streaming", False):
        return b"".join(resp.streaming_content).decode(errors="replace")
    return resp.content.decode(errors="replace")


def _leaks(resp, markers: list[str]) -> list[str]:
    body = _body(resp) + " ".join(f"{k}: {v}" for k, v in resp.headers.items())
    return [m for m in markers if m and m in body]


def _refused(resp) -> bool:
    return resp.status_code in (403, 404, 405) or _refused_redirect(resp)


def _attack_body(w: World) -> dict:
    """What an attacker posts: confirmed, naming the victim's objects in every usual field."""
    a = str(w.account.pk)
    return {
        "confirmed": "1",
        "place_anyway": "on",
        "save_anyway": "on",
        "accounts": [a],
        "account": a,
        "account_id": a,
        "batch": str(w.batch_id),
        "order": str(w.order_id),
        "position": str(w.position_id),
        "symbol": "SBIN",
        "exchange": "NSE",
        "action": "SELL",
        "quantity": "1",
        "pricetype": "MARKET",
        "product": "MIS",
        "state": "halted",
        "reason": "pwned",
        "ours": "0",
        "broker": "0",
        "name": "pwned",
    }


def _client(user=None, **kw) -> Client:
    c = Client(**kw)
    if user is not None:
        c.force_login(user)
    return c


def _fingerprint(w: World, *, victim_only: bool = False) -> dict:
    """Every row of every model (the victim's only, for the other user's sweep), without
    bookkeeping that a request may touch (last_login), and the victim's broker ledger."""
    out = {}
    owner = w.owner
    for model in apps.get_models():
        label = model._meta.label
        if model._meta.app_label in ("sessions",):
            continue
        qs = model._default_manager.all()
        if victim_only:
            fields = {f.name for f in model._meta.get_fields()}
            if model is get_user_model():
                qs = qs.filter(pk=owner.pk)
            elif "owner" in fields:
                qs = qs.filter(owner=owner)
            elif "account" in fields:
                qs = qs.filter(account__owner=owner)
            elif "user" in fields:
                qs = qs.filter(user=owner)
        rows = [
            {k: v for k, v in row.items() if k not in ("last_login",)}
            for row in qs.order_by("pk").values()
            if model._meta.pk is not None
        ]
        out[label] = rows
    out["broker ledger"] = [(o["orderid"], o.get("status")) for o in w.broker.ledger()]
    return out


def _diff(before: dict, after: dict) -> list[str]:
    out = []
    for label in before:
        if before[label] != after.get(label):
            b = {r.get("id", str(r)): r for r in before[label]}
            a = {r.get("id", str(r)): r for r in after.get(label, [])}
            added = [a[k] for k in a.keys() - b.keys()]
            removed = [b[k] for k in b.keys() - a.keys()]
            changed = [(b[k], a[k]) for k in a.keys() & b.keys() if a[k] != b[k]]
            out.append(f"{label}: +{added} -{removed} ~{changed}"[:600])
    return out


# ------------------------------------------------------------------ the pass
def test_every_url_is_covered(world):
    """Each URL's parameters can be filled with a real object, every PUBLIC entry still exists,
    and nothing answers an anonymous GET with a page unless PUBLIC says why."""
    problems = []
    eps = endpoints()
    for ep in eps:
        try:
            paths(ep, world)
        except Unfillable as e:
            problems.append(str(e))
    names = {ep.name for ep in eps}
    problems += [f"PUBLIC lists {n!r}, which is no URL any more" for n in PUBLIC if n not in names]
    assert not problems, "\n".join(problems)
    assert len(eps) > 100  # the walk reached the included URL confs (allauth, admin, the apps)


def test_anonymous_gets_a_login_page_or_nothing(world):
    problems = []
    anon = Client()
    for ep, path in all_paths(world):
        for method in ("GET", "POST"):
            resp = _follow(anon, method, path, _attack_body(world))
            leaked = _leaks(resp, world.markers)
            if leaked:
                problems.append(f"{method} {path}: anonymous response shows {leaked}")
            if resp.status_code >= 500:
                problems.append(f"{method} {path}: {resp.status_code} {_body(resp)[:300]}")
            elif ep.key not in PUBLIC and not _refused(resp):
                problems.append(
                    f"{method} {path} ({ep.key}): anonymous got {resp.status_code} "
                    f"{resp.get('Location', '')} — require a login, or list it in PUBLIC with the reason"
                )
    assert not problems, "\n".join(problems)


def test_another_user_gets_404_and_changes_nothing(world):
    """Mallory (signed in, not staff, with her own account) against every URL holding the
    victim's ids, GET and a confirmed POST naming the victim's objects."""
    problems = []
    before = _fingerprint(world, victim_only=True)
    for ep, path in all_paths(world):
        holds_ids = bool(PARAM.search(ep.route))
        for method in ("GET", "POST"):
            mallory = _client(world.mallory)  # afresh: a logout URL must not end the sweep
            resp = _follow(mallory, method, path, _attack_body(world))
            leaked = _leaks(resp, world.markers)
            if leaked:
                problems.append(f"{method} {path}: another user sees {leaked}")
            if resp.status_code >= 500:
                problems.append(f"{method} {path}: {resp.status_code} {_body(resp)[:300]}")
            elif holds_ids and ep.key not in PUBLIC and not _refused(resp):
                problems.append(f"{method} {path} ({ep.key}): another user got {resp.status_code}, not 404")
    changed = _diff(before, _fingerprint(world, victim_only=True))
    assert not problems and not changed, "\n".join(problems + ["victim's data changed:", *changed])


def test_get_never_acts_and_every_page_renders_for_the_admin(world):
    """The victim is a superuser: every URL, GET (with the confirmed attack body as its query), as them. No 500, a page
    or a redirect to one for every URL that serves GET (405 for the POST-only ones), and not a row
    nor the broker's ledger changed by any GET."""
    problems = []
    owner = _client(world.owner)
    for ep, path in all_paths(world):
        before = _fingerprint(world)
        resp = _request(owner, "GET", path, _attack_body(world))
        changed = _diff(before, _fingerprint(world))
        if changed:
            problems.append(f"GET {path} ({ep.key}) changed data: {changed}")
        if "_auth_user_id" not in owner.session:
            problems.append(f"GET {path} ({ep.key}) logged the user out (a GET must not act)")
            owner.force_login(world.owner)
        if _leaks(resp, [world.broker.api_key]):
            problems.append(f"GET {path}: the API key is on the page")
        if resp.status_code >= 500:
            problems.append(f"GET {path} ({ep.key}): {resp.status_code} {_body(resp)[:300]}")
        elif resp.status_code in REDIRECT:
            # Re-authentication before a sensitive page is fine; a login page means refused.
            if _refused_redirect(resp, LOGIN_VIEWS) and ep.key not in PUBLIC:
                problems.append(f"GET {path} ({ep.key}): the admin was sent to {resp['Location']}")
        elif resp.status_code == 200:
            if "text/html" in resp.get("Content-Type", "") and "</html>" not in _body(resp):
                problems.append(f"GET {path} ({ep.key}): not a whole page")
        elif resp.status_code != 405 and ADMIN_ANSWERS.get(ep.key, (None,))[0] != resp.status_code:
            problems.append(f"GET {path} ({ep.key}): {resp.status_code} for the owner")
    assert not problems, "\n".join(problems)


# URLs that answer a signed-in admin's bare GET with an error by design: (status, why).
ADMIN_ANSWERS = {
    "admin/(?P<url>.*)$": (404, "the admin's catch-all: an unknown admin page"),
    "account_confirm_email": (404, "a made-up verification key"),
    "admin:view_on_site": (404, "no model here has a public page (get_absolute_url)"),
    "admin:autocomplete": (403, "asked without the field it completes"),
    "admin:accounts_auditevent_add": (403, "audit rows are never added by hand"),
    "admin:accounts_auditevent_delete": (403, "audit rows are read-only in the admin"),
    "admin:accounts_tradingaccount_add": (403, "accounts are added on their own page, which encrypts the key"),
    "mfa_deactivate_totp": (404, "no TOTP set up to deactivate"),
    "mfa_view_recovery_codes": (404, "no recovery codes generated yet"),
    "mfa_download_recovery_codes": (404, "no recovery codes generated yet"),
    "order_symbol_check": (400, "asked without a symbol: the JSON says so"),
}


def test_every_post_without_csrf_is_refused(world):
    problems = []
    for user in (world.owner, None):
        client = _client(user, enforce_csrf_checks=True)
        for ep, path in all_paths(world):
            if user is None and ep.key not in PUBLIC:
                continue  # anonymous: only the public forms (login, reset) matter here
            before = _fingerprint(world)
            resp = _request(client, "POST", path, _attack_body(world))
            who = "owner" if user else "anonymous"
            not_for_post = resp.status_code == 405 and "POST" not in resp.get("Allow", "")
            if resp.status_code != 403 and not not_for_post:
                problems.append(f"POST {path} ({ep.key}) as {who} without CSRF: {resp.status_code}, not 403")
            changed = _diff(before, _fingerprint(world))
            if changed:
                problems.append(f"POST {path} ({ep.key}) without CSRF changed data: {changed}")
    assert not problems, "\n".join(problems)


# ------------------------------------------------------------------ WebSockets
def _unwrap(app):
    """The routes under the ASGI app's middleware: (route, consumer) pairs of every URLRouter."""
    seen = set()
    stack = [("", app)]
    while stack:
        prefix, node = stack.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        routes = getattr(node, "routes", None)
        if routes is not None:
            for r in routes:
                inner = getattr(r, "callback", None) or getattr(r, "url_patterns", None)
                if isinstance(r, URLResolver):
                    for p in r.url_patterns:
                        stack.append((prefix + str(r.pattern), _Routes([p])))
                elif getattr(inner, "routes", None) is not None:
                    stack.append((prefix + str(r.pattern), inner))
                else:
                    yield prefix + str(r.pattern), inner
            continue
        mapping = getattr(node, "application_mapping", None)
        if mapping is not None:
            if "websocket" in mapping:
                stack.append((prefix, mapping["websocket"]))
            continue
        for attr in ("application", "inner", "app"):
            if getattr(node, attr, None) is not None:
                stack.append((prefix, getattr(node, attr)))


class _Routes:
    def __init__(self, routes):
        self.routes = routes


def ws_routes() -> list[str]:
    from algomirror.asgi import application

    return sorted(route for route, _ in _unwrap(application))


def _ws_path(route: str, w: World) -> str:
    return paths(Endpoint(route, None, "websocket"), w)[0]


async def _ws_connect(path: str, *, cookie: str | None, origin: str | None) -> bool:
    from channels.testing import WebsocketCommunicator

    from algomirror.asgi import application

    headers = [(b"host", b"testserver")]
    if origin is not None:
        headers.append((b"origin", origin.encode()))
    if cookie is not None:
        headers.append((b"cookie", f"{settings.SESSION_COOKIE_NAME}={cookie}".encode()))
    c = WebsocketCommunicator(application, path, headers=headers)
    connected, _ = await c.connect(timeout=5)
    if connected:
        await c.disconnect()
    return connected


def _session(user) -> str:
    c = Client()
    c.force_login(user)
    return c.cookies[settings.SESSION_COOKIE_NAME].value


async def test_every_websocket_route_refuses_strangers_and_foreign_origins(world):
    routes = await sync_to_async(ws_routes)()
    assert routes, "no WebSocket route found under algomirror.asgi.application"
    own, theirs = await sync_to_async(_session)(world.owner), await sync_to_async(_session)(world.mallory)
    good, evil = "http://testserver", "http://evil.example"
    problems = []
    for route in routes:
        path = await sync_to_async(_ws_path)(route, world)
        cases = [
            ("the owner (control)", own, good, True),
            ("anonymous", None, good, False),
            ("a foreign Origin", own, evil, False),
            ("no Origin", own, None, False),
            ("a foreign Origin, anonymous", None, evil, False),
        ]
        if PARAM.search(route):
            cases.append(("another user", theirs, good, False))
        for who, cookie, origin, expected in cases:
            if await _ws_connect(path, cookie=cookie, origin=origin) != expected:
                problems.append(f"{path}: {who} {'refused' if expected else 'connected'}")
    await sync_to_async(connections.close_all)()
    assert not problems, "\n".join(problems)


def test_the_sweep_reaches_every_app():
    """A guard on the walk itself: the apps' URLs and WebSocket routes are all in it."""
    names = {ep.name for ep in endpoints()}
    for name in ("dashboard", "books", "batch_detail", "option_chain", "mailbox_mail", "admin:index"):
        assert name in names
    assert {"ws/dashboard/", "ws/marketdata/", "ws/batches/<int:pk>/"} <= set(ws_routes())
