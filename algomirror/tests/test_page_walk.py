"""A walk through every page a trader and an admin reach (issue 19): each link of the side bar,
plus a detail page of each kind, in the light and the dark theme, in Chromium. Each page answers
without an error, draws in the theme asked for, keeps its content inside its cards and raises
no script error; the screenshots
(test-artifacts/screenshots/walk-*.png) are for a person to look at.

The pages are found from the side bar itself, so a page added to it is walked by itself."""

from __future__ import annotations

import re
from decimal import Decimal

import pytest
from django.core import mail as django_mail

from accounts import services as account_services
from accounts.tests.browser import ARTIFACTS, chromium, in_thread
from accounts.tests.factories import UserFactory, account_on
from marketdata import services as md_services
from trading import services
from trading.models import Order
from trading.services import Leg

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow, pytest.mark.once]


def _slug(path: str) -> str:
    """A file name that stays the same from run to run: ids become "n"."""
    path = re.sub(r"/\d[\w-]*", "/n", path.lower())
    return re.sub(r"[^a-z0-9]+", "-", path).strip("-") or "dashboard"


@pytest.fixture
def desk(paper_clean, settings, tmp_path):
    """An admin with three paper accounts, a filled and a resting order, the brokers' books read,
    a mail in the local mailbox and a holiday: every page has something to show."""
    settings.EMAIL_BACKEND = "accounts.mailbox.MailboxBackend"
    settings.EMAIL_FILE_PATH = str(tmp_path / "mail")

    def setup():
        import datetime as dt

        from django.utils import timezone

        admin = UserFactory(username="owner", admin=True)
        accounts = [account_on(sim, owner=admin) for sim in paper_clean[:3]]
        for a in accounts:
            account_services.account_check(account_id=a.pk)
        filled = services.orders_create(user=admin, accounts=accounts, legs=[Leg("SBIN", "NSE", "BUY", 5)])
        resting = services.orders_create(
            user=admin, accounts=accounts[:1], legs=[Leg("INFY", "NSE", "BUY", 1, "LIMIT", "MIS", Decimal("1200"))]
        )
        for a in accounts:
            services.orders_send_account(account_id=a.pk)
            services.account_books_refresh(account_id=a.pk)
        django_mail.send_mail("Reset your password", "Follow the link.", "noreply@example.com", [admin.email])
        day = timezone.localdate() + dt.timedelta(days=40)
        holiday = md_services.holiday_add(date=day, name="Walk holiday", market="NSE")
        return {
            "admin": admin,
            "account": accounts[0],
            "batch": filled.pk,
            "order": Order.objects.get(batch=resting).pk,
            "mail": sorted((tmp_path / "mail").glob("*.eml"))[-1].stem,
            "holiday": holiday.pk,
        }

    return in_thread(setup)


def details(d: dict) -> list[str]:
    """A page of each kind the side bar does not link to."""
    return [
        f"/accounts/{d['account'].pk}/edit/",
        "/accounts/add/",
        f"/accounts/{d['account'].pk}/delete/",
        f"/trading/orders/{d['batch']}/",
        f"/trading/orders/{d['batch']}/modify-all/",
        f"/trading/orders/order/{d['order']}/modify/",
        *[f"/trading/books/?tab={t}" for t in ("positions", "orders", "trades", "holdings", "funds")],
        f"/mailbox/{d['mail']}/",
        f"/marketdata/calendar/holiday/{d['holiday']}/delete/",
        "/marketdata/chain/?underlying=BANKNIFTY&strikes=5",
        "/admin/accounts/tradingaccount/",
        f"/admin/accounts/tradingaccount/{d['account'].pk}/change/",
        "/admin/accounts/auditevent/",
        "/auth/password/change/",
        "/auth/2fa/",
    ]


def test_every_page_in_both_themes(live_server, desk):
    for old in ARTIFACTS.glob("walk-*.png"):
        old.unlink()
    with chromium(live_server) as b:
        nav = b.page(desk["admin"])
        nav.goto(f"{live_server.url}/")
        links = nav.eval_on_selector_all(
            "aside a[href^='/'], nav a[href^='/']", "els => els.map(e => e.getAttribute('href'))"
        )
        nav.close()
        pages = list(dict.fromkeys(["/", *links, *details(desk)]))
        assert len(pages) >= 20, pages
        problems = []
        for dark in (False, True):
            theme = "dark" if dark else "light"
            page = b.page(desk["admin"], dark=dark)
            page.route_web_socket(re.compile(r".*/ws/.*"), lambda ws: None)  # the live server speaks no WebSocket
            failed: list[str] = []
            page.on(
                "response", lambda r, failed=failed: failed.append(f"{r.status} {r.url}") if r.status >= 400 else None
            )
            for path in pages:
                b.errors.clear()
                failed.clear()
                resp = page.goto(f"{live_server.url}{path}")
                page.wait_for_load_state("networkidle")
                if resp is None or resp.status >= 400:
                    problems.append(f"{path} ({theme}): {resp.status if resp else 'no response'}")
                if page.url.rstrip("/").endswith("/auth/login") or "/admin/login/" in page.url:
                    problems.append(f"{path} ({theme}): sent to the login page")
                if not path.startswith("/admin/"):  # Django's admin has its own theme switch
                    shown = page.eval_on_selector("html", "e => e.getAttribute('data-theme')")
                    if shown != theme:
                        problems.append(f"{path}: drawn {shown}, asked {theme}")
                spill = page.eval_on_selector_all(
                    ".card",  # a card that scrolls (overflow-x-auto: wide tables) keeps its content by design
                    "cs => cs.filter(c => getComputedStyle(c).overflowX === 'visible'"
                    " && c.scrollWidth > c.clientWidth + 1).map(c => c.id || c.className)",
                )
                if spill:
                    problems.append(f"{path} ({theme}): content spills out of its card: {spill}")
                if b.errors:
                    problems.append(f"{path} ({theme}): script errors {b.errors[:3]} {failed[:3]}")
                b.shot(page, f"walk-{_slug(path)}-{theme}")
            page.close()
    assert not problems, "\n".join(problems)
