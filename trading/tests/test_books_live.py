"""The books page in a real browser: live prices and fills keep every figure on the page in step.

Django's live server serves the page; Playwright stands in for the two WebSockets (market data and
the owner's fills), so the test decides exactly which price or fill arrives when. Screenshots go
to test-artifacts/screenshots/.
"""

from __future__ import annotations

import contextlib
import json
import re
import time
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal

import pytest
from django.conf import settings
from django.db import connection

from accounts import services as account_services
from brokersim.testing import ROOT
from core.money import inr
from marketdata import store
from trading.models import Position

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]
ARTIFACTS = ROOT / "test-artifacts" / "screenshots"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
KEYS = ["NSE:SBIN", "NSE:INFY", "NSE:TCS"]


@contextlib.contextmanager
def signed_in_page(live_server, client, user, *, height: int = 900):
    """A headless Chromium page on the live server, signed in as `user`; yields the page and the
    console/page errors it collects (tests assert there are none)."""
    from playwright.sync_api import sync_playwright

    client.force_login(user)
    cookie = {"name": settings.SESSION_COOKIE_NAME, "value": client.cookies[settings.SESSION_COOKIE_NAME].value}
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        context = browser.new_context(viewport={"width": 1360, "height": height})
        context.add_cookies([{**cookie, "url": live_server.url}])
        page = context.new_page()
        errors: list[str] = []
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: errors.append(str(e)))
        try:
            yield page, errors
        finally:
            browser.close()


class FakeSockets:
    """The server side of the page's sockets: what the page sent, and a way to push to it."""

    def __init__(self, page):
        self.md = None
        self.fills = None
        self.watches: list[list[str]] = []
        self.connects = 0
        page.route_web_socket(re.compile(r".*/ws/marketdata/$"), self._marketdata)
        page.route_web_socket(re.compile(r".*/ws/dashboard/$"), self._dashboard)

    def _marketdata(self, ws):
        self.md = ws
        self.connects += 1

        def received(message):
            m = json.loads(message)
            if m.get("action") == "watch":
                self.watches.append(sorted(s["key"] for s in m["symbols"]))

        ws.on_message(received)

    def _dashboard(self, ws):
        self.fills = ws

    def prices(self, **ltps):
        items = [{"type": "price", "key": k, "ltp": v, "stale": v is None} for k, v in ltps.items()]
        self.md.send(json.dumps({"type": "prices", "items": items}))

    def fill(self, position: Position):
        data = {
            "account_id": position.account_id,
            "key": position.key,
            "product": position.product,
            "quantity": position.quantity,
            "average_price": str(position.average_price),
            "realized": str(position.realized),
        }
        self.fills.send(json.dumps({"type": "position.updated", "data": data}))


def wait_until(page, check, what: str, timeout: float = 10.0):
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        page.wait_for_timeout(50)


def figure(text: str) -> Decimal:
    return Decimal(text.replace("\u2212", "-").replace("₹", "").replace(",", ""))


def in_thread(fn):
    """Database work while Playwright's sync API holds an event loop in the test's thread."""

    def run():
        try:
            return fn()
        finally:
            connection.close()

    with ThreadPoolExecutor(1) as pool:
        return pool.submit(run).result()


def read_page(page) -> dict:
    """Every figure the page shows, as text."""
    return page.evaluate(
        """() => {
        const text = (el, f) => el.querySelector(`[data-f=${f}]`).textContent;
        return {
          rows: [...document.querySelectorAll("tr[data-position]")].map(tr => ({
            account: tr.dataset.accountId, key: tr.dataset.position, ltp: text(tr, "ltp"),
            realized: text(tr, "realized"), unrealized: text(tr, "unrealized"), total: text(tr, "total")})),
          subtotals: [...document.querySelectorAll("tr[data-subtotal]")].map(tr => ({
            account: tr.dataset.subtotal, open: text(tr, "open"),
            unpriced: tr.querySelector("[data-f=unpriced]").hidden ? 0 : text(tr, "unpriced"),
            realized: text(tr, "realized"), unrealized: text(tr, "unrealized"), total: text(tr, "total")})),
          sums: Object.fromEntries([...document.querySelectorAll("[data-sum]")].map(e => [e.dataset.sum, e.innerText])),
          note: !document.querySelector("[data-unpriced-note]").hidden,
        };
    }"""
    )


def assert_consistent(shown: dict) -> None:
    """Subtotals and totals are the sums of the rows, with unpriced open rows left out of every sum."""
    per_account: dict[str, dict] = {}
    unpriced = 0
    for r in shown["rows"]:
        a = per_account.setdefault(r["account"], {"realized": Decimal(0), "unrealized": Decimal(0), "unpriced": 0})
        if r["total"] == "—":
            assert r["ltp"] == "no fresh price" and r["unrealized"] == "—"
            a["unpriced"] += 1
            unpriced += 1
            continue
        assert figure(r["total"]) == figure(r["realized"]) + figure(r["unrealized"])
        a["realized"] += figure(r["realized"])
        a["unrealized"] += figure(r["unrealized"])
    for s in shown["subtotals"]:
        a = per_account[s["account"]]
        assert figure(s["realized"]) == a["realized"]
        assert figure(s["unrealized"]) == a["unrealized"]
        assert figure(s["total"]) == a["realized"] + a["unrealized"]
        assert s["unpriced"] == (f"({a['unpriced']} unpriced)" if a["unpriced"] else 0)
    realized = sum((a["realized"] for a in per_account.values()), Decimal(0))
    unrealized = sum((a["unrealized"] for a in per_account.values()), Decimal(0))
    assert figure(shown["sums"]["realized"]) == realized
    assert figure(shown["sums"]["unrealized"]) == unrealized
    assert figure(shown["sums"]["total"]) == realized + unrealized
    assert shown["note"] == bool(unpriced) and int(shown["sums"]["unpriced"]) == unpriced


@pytest.fixture
def books(alice):
    store.client().hdel(store.PRICES, *KEYS)  # no fresh price for anything yet
    a, b = (
        account_services.account_create(
            owner=alice, name=name, host_url="http://127.0.0.1:9", ws_url="ws://127.0.0.1:9", api_key=f"k{name:0>60}"
        )
        for name in ("alpha", "bravo")
    )

    def pos(account, symbol, qty, avg, realized="0"):
        return Position.objects.create(
            account=account,
            symbol=symbol,
            exchange="NSE",
            product="MIS",
            quantity=qty,
            average_price=Decimal(avg),
            realized=Decimal(realized),
        )

    return {
        "a": a,
        "b": b,
        "a_sbin": pos(a, "SBIN", 2, "100"),
        "a_infy": pos(a, "INFY", -1, "50", "10"),
        "b_sbin": pos(b, "SBIN", 5, "100.5", "-3.25"),
        "pos": pos,
    }


def test_prices_and_fills_keep_rows_subtotals_totals_and_note_in_step(live_server, client, alice, books):
    from playwright.sync_api import expect

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with signed_in_page(live_server, client, alice, height=1000) as (page, errors):
        sockets = FakeSockets(page)
        page.goto(f"{live_server.url}/trading/books/")

        # Nothing priced: every open position is unpriced, and the page says so.
        expect(page.locator("tr[data-position]")).to_have_count(3)
        expect(page.locator('[data-live-status="prices"]')).to_have_text("live")
        wait_until(page, lambda: sockets.watches, "the page to watch its instruments")
        assert sockets.watches[-1] == ["NSE:INFY", "NSE:SBIN"]
        shown = read_page(page)
        assert shown["note"] and shown["sums"]["unpriced"] == "3"
        assert_consistent(shown)
        page.screenshot(path=str(ARTIFACTS / "books-live-1-unpriced.png"), full_page=True)

        # Prices arrive: rows, subtotals, totals and the note all follow.
        page.evaluate("window.__sameDocument = true")
        sockets.prices(**{"NSE:SBIN": 99, "NSE:INFY": 52.5})
        expect(page.locator("[data-unpriced-note]")).to_be_hidden()
        shown = read_page(page)
        assert_consistent(shown)
        a, b = str(books["a"].pk), str(books["b"].pk)
        unrealized = {(r["account"], r["key"]): r["unrealized"] for r in shown["rows"]}
        assert unrealized == {(a, "NSE:SBIN"): "-2.00", (a, "NSE:INFY"): "-2.50", (b, "NSE:SBIN"): "-7.50"}
        assert [s["total"] for s in shown["subtotals"]] == ["5.50", "-10.75"]
        assert shown["sums"] == {
            "realized": "₹6.75",
            "unrealized": "\u2212₹12.00",
            "total": "\u2212₹5.25",
            "unpriced": "0",
        }
        assert "neg" in page.locator('tr[data-subtotal] [data-f="total"]').nth(1).get_attribute("class")
        page.screenshot(path=str(ARTIFACTS / "books-live-2-priced.png"), full_page=True)

        # A price goes stale: that row is unpriced again, and so are its subtotal and the totals.
        sockets.prices(**{"NSE:INFY": None})
        expect(page.locator("[data-unpriced-note]")).to_be_visible()
        shown = read_page(page)
        assert_consistent(shown)
        assert shown["subtotals"][0]["unpriced"] == "(1 unpriced)" and shown["sums"]["unpriced"] == "1"
        sockets.prices(**{"NSE:INFY": 52.5})
        expect(page.locator("[data-unpriced-note]")).to_be_hidden()

        # A fill on a row the page shows: updated in place, no reload.
        a_sbin = books["a_sbin"]

        def bought_two_more():
            Position.objects.filter(pk=a_sbin.pk).update(quantity=4, average_price=Decimal("99.5"))
            return Position.objects.select_related("account").get(pk=a_sbin.pk)

        sockets.fill(in_thread(bought_two_more))
        row = page.locator(f'tr[data-account-id="{books["a"].pk}"][data-position="NSE:SBIN"]')
        expect(row.locator("[data-f=qty]")).to_have_text("4")
        expect(row.locator("[data-f=avg]")).to_have_text("99.50")
        expect(row.locator("[data-f=unrealized]")).to_have_text("-2.00")  # 4 × (99 − 99.5)
        assert row.locator("[data-close]").get_attribute("title").startswith("Exit 4 SBIN on alpha")
        assert_consistent(read_page(page))

        # A fill that opens a new position: the live part is rendered again and the new key watched.
        sockets.fill(in_thread(lambda: books["pos"](books["b"], "TCS", 1, "3000")))
        expect(page.locator("tr[data-position]")).to_have_count(4)
        wait_until(page, lambda: "NSE:TCS" in sockets.watches[-1], "the new instrument to be watched")
        shown = read_page(page)
        assert_consistent(shown)
        assert shown["sums"]["unpriced"] == "1"  # TCS has no price yet; SBIN and INFY kept theirs
        sockets.prices(**{"NSE:TCS": 3012.25})
        expect(page.locator("[data-unpriced-note]")).to_be_hidden()
        assert_consistent(read_page(page))
        assert page.evaluate("window.__sameDocument") is True  # never reloaded
        page.screenshot(path=str(ARTIFACTS / "books-live-3-after-fills.png"), full_page=True)

        # The market-data socket drops: the page says so, reconnects, and asks for its prices again.
        watches_before = len(sockets.watches)
        sockets.md.close(code=1011, reason="restart")
        expect(page.locator('[data-live-status="prices"]')).to_have_text("reconnecting…")
        page.screenshot(path=str(ARTIFACTS / "books-live-4-reconnecting.png"), full_page=True)
        expect(page.locator('[data-live-status="prices"]')).to_have_text("live", timeout=10000)
        wait_until(page, lambda: len(sockets.watches) > watches_before, "a watch after the reconnect")
        assert sockets.connects == 2 and sockets.watches[-1] == ["NSE:INFY", "NSE:SBIN", "NSE:TCS"]

        # One number formatter for every page, the same as the server's.
        values = [0, -0.004, 0.005, 1.005, 2.675, -2.5, 1234567.891, -98765432.105, 99999.995, 10000000]
        assert page.evaluate("vs => vs.map(v => AM.num(v))", values) == [inr(v) for v in values]
    assert errors == []


def test_the_dashboard_reads_what_it_missed_after_a_reconnect(live_server, client, alice, books):
    """The same socket helper on another page: after a drop, the cards are read again."""
    from playwright.sync_api import expect

    from accounts.models import TradingAccount

    sockets: list = []
    with signed_in_page(live_server, client, alice, height=900) as (page, errors):
        page.route_web_socket(re.compile(r".*/ws/dashboard/$"), lambda ws: sockets.append(ws))
        page.goto(f"{live_server.url}/")
        status = page.locator("[data-live-status]")
        expect(status).to_have_text("Live updates: on")
        card = page.locator(f'[data-account="{books["a"].pk}"] [data-field=cash]')
        expect(card).to_have_text("—")

        # While the page is away, the account's funds are read: no event reaches the page.
        funds = {"available_cash": "1234567.5", "utilised": "0", "m2m_realized": "0", "m2m_unrealized": "0"}
        in_thread(lambda: TradingAccount.objects.filter(pk=books["a"].pk).update(funds=funds))
        sockets[-1].close(code=1011, reason="restart")
        expect(status).to_have_text("Live updates: reconnecting…")
        expect(status).to_have_text("Live updates: on", timeout=10000)
        expect(card).to_have_text("₹12,34,567.50")
        expect(page.locator('[data-total="cash"]')).to_have_text("₹12,34,567.50")
        page.screenshot(path=str(ARTIFACTS / "dashboard-live-resynced.png"), full_page=True)
    assert len(sockets) == 2 and errors == []
