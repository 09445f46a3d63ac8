"""One format everywhere (issue 19, point 11): instants as "02 Dec 2026, 10:32:29 IST", negative
money as "−₹1,561.25", two decimals in every CSV, display statuses and reject reasons in the
orders CSV, brokers' bare trade times with their date on screen and in the CSV."""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
from decimal import Decimal

import pytest
from django.utils import timezone

from accounts.models import TradingAccount
from accounts.tests.factories import TradingAccountFactory, account_on
from core.calendar import IST
from trading import services
from trading.models import BrokerBook, Order
from trading.services import Leg
from trading.tests.factories import OrderFactory, PositionFactory

pytestmark = pytest.mark.django_db
MINUS = "\u2212"
AT = dt.datetime(2026, 12, 2, 5, 2, 29, tzinfo=dt.UTC)  # 10:32:29 IST
FUNDS = {
    "available_cash": "1000",
    "collateral": "0",
    "utilised": "12.5",
    "m2m_realized": "-1561.250",
    "m2m_unrealized": "0.0",
}


def table(body: bytes) -> list[dict]:
    return list(csv.DictReader(io.StringIO(body.decode())))


@pytest.fixture
def acct(alice):
    a = TradingAccountFactory.create(owner=alice, name="paper-01")
    TradingAccount.objects.filter(pk=a.pk).update(funds=FUNDS, funds_at=AT, last_checked_at=AT)
    return a


def test_negative_money_has_a_true_minus_before_the_rupee(client, alice, acct):
    PositionFactory(account=acct, symbol="SBIN", quantity=0, realized=Decimal("-1561.25"))
    client.force_login(alice)
    funds = client.get("/trading/books/?tab=funds").content.decode()
    positions = client.get("/trading/books/").content.decode()
    dashboard = client.get("/").content.decode()
    for page in (funds, positions, dashboard):
        assert f"{MINUS}₹1,561.25" in page
        assert "₹-" not in page
    assert "₹1,000.00" in funds  # positive figures keep the plain symbol


def test_funds_csv_has_two_decimals_everywhere(client, alice, acct):
    client.force_login(alice)
    [row] = table(client.get("/trading/books/?tab=funds&export=funds").content)
    assert row == {
        "account": "paper-01",
        "available_cash": "1000.00",
        "collateral": "0.00",
        "utilised": "12.50",
        "m2m": "-1561.25",
        "as_of_ist": "2026-12-02 10:32:29",
    }


def test_every_csv_money_column_has_two_decimals(client, alice):
    from trading.testing import books_seed

    books_seed(user=alice, accounts=2, orders=12)
    client.force_login(alice)
    money = {
        "positions": ["average_price", "ltp", "realized", "unrealized", "total"],
        "orders": ["price", "trigger_price", "average_price"],
        "trades": ["price", "value"],
        "holdings": ["average_price", "ltp", "pnl"],
        "funds": ["available_cash", "collateral", "utilised", "m2m"],
    }
    for tab, columns in money.items():
        rows = table(client.get(f"/trading/books/?tab={tab}&export={tab}").content)
        assert rows, tab
        for r in rows:
            for c in columns:
                assert r[c] == "" or re.fullmatch(r"-?\d+\.\d\d", r[c]), (tab, c, r[c])


def test_orders_csv_says_the_status_as_shown_and_why_it_was_rejected(client, alice, acct):
    rejected = OrderFactory(
        account=acct,
        status=Order.Status.REJECTED,
        pricetype="LIMIT",
        price=Decimal("212.3"),
        last_error="RMS:Margin Exceeds, Required:1561.25, Available:1000.00",
    )
    Order.objects.filter(pk=rejected.pk).update(created_at=AT)
    OrderFactory(account=acct, status=Order.Status.PENDING, symbol="INFY")
    client.force_login(alice)
    rows = {r["symbol"]: r for r in table(client.get("/trading/books/?tab=orders&export=orders").content)}
    assert rows["SBIN"]["status"] == "Rejected"
    assert rows["SBIN"]["reason"] == "RMS:Margin Exceeds, Required:1561.25, Available:1000.00"
    assert rows["SBIN"]["price"] == "212.30"
    assert rows["SBIN"]["time_ist"] == "2026-12-02 10:32:29"
    assert rows["INFY"]["status"] == "Queued" and rows["INFY"]["reason"] == ""
    page = client.get("/trading/books/?tab=orders").content.decode()
    assert "02 Dec 2026, 10:32:29 IST" in page


def test_a_dhan_bare_trade_time_shows_with_its_date(client, alice, paper_clean):
    """Dhan's tradebook stamps a trade "10:15:00": the page and the CSV show it as an instant of
    that trading day, like every other broker's."""
    sim = paper_clean[0]
    sim.set_profile("dhan")
    account = account_on(sim, owner=alice, name="dhan-01")
    batch = services.orders_create(user=alice, accounts=[account], legs=[Leg("SBIN", "NSE", "BUY", 3)])
    services.orders_send_account(account_id=account.pk, batch_id=batch.pk)
    services.account_books_refresh(account_id=account.pk)
    today = timezone.now().astimezone(IST).date()  # the trade is seconds old
    [trade] = BrokerBook.objects.get(account=account, kind="trades").rows
    bare = trade["time"]
    assert re.fullmatch(r"\d\d:\d\d:\d\d", bare), bare  # what Dhan sends: no date
    client.force_login(alice)
    page = client.get("/trading/books/?tab=trades").content.decode()
    assert f"{today:%d %b %Y}, {bare} IST" in page
    [row] = table(client.get("/trading/books/?tab=trades&export=trades").content)
    assert row["time_ist"] == f"{today:%Y-%m-%d} {bare}"
    assert re.fullmatch(r"\d+\.\d\d", row["price"]) and re.fullmatch(r"\d+\.\d\d", row["value"])


def test_trades_of_every_shape_sort_by_their_instant(client, alice, acct):
    read = dt.datetime(2026, 12, 2, 15, 0, tzinfo=IST)
    shapes = ["10:15:00", "2026-12-02 09:20:00", "02-Dec-2026 11:05:00", str(int(read.timestamp()) - 60)]
    rows = [
        {"symbol": f"S{i}", "action": "BUY", "quantity": 1, "price": "1", "value": "1", "orderid": str(i), "time": t}
        for i, t in enumerate(shapes)
    ]
    BrokerBook.objects.create(account=acct, kind="trades", ok=True, rows=rows, fetched_at=read)
    client.force_login(alice)
    got = [r["time_ist"] for r in table(client.get("/trading/books/?tab=trades&sort=time&export=trades").content)]
    assert got == ["2026-12-02 09:20:00", "2026-12-02 10:15:00", "2026-12-02 11:05:00", "2026-12-02 14:59:00"]
    page = client.get("/trading/books/?tab=trades&sort=-time").content.decode()
    shown = re.findall(r"\d\d \w{3} \d{4}, \d\d:\d\d:\d\d IST", page.split("<tbody>", 1)[1])
    assert shown == [
        "02 Dec 2026, 14:59:00 IST",
        "02 Dec 2026, 11:05:00 IST",
        "02 Dec 2026, 10:15:00 IST",
        "02 Dec 2026, 09:20:00 IST",
    ]


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_the_books_page_in_a_browser_keeps_the_one_format(live_server):
    """After the page's scripts ran (live repaint of the sums, "as of" times rewritten in the
    browser), the books still read −₹ and full IST datetimes: the script prints what the server
    prints."""
    from playwright.sync_api import expect

    from accounts.tests.browser import chromium, in_thread
    from accounts.tests.factories import UserFactory

    def seed():
        user = UserFactory(username="trader")
        a = TradingAccountFactory.create(owner=user, name="dhan-01")
        TradingAccount.objects.filter(pk=a.pk).update(funds=FUNDS, funds_at=AT, last_checked_at=AT)
        PositionFactory(account=a, symbol="SBIN", quantity=0, realized=Decimal("-1561.25"))
        PositionFactory(account=a, symbol="INFY", quantity=0, realized=Decimal("250.5"))
        trade = {"symbol": "SBIN", "exchange": "NSE", "product": "MIS", "action": "SELL", "quantity": 5}
        BrokerBook.objects.create(
            account=a,
            kind="trades",
            ok=True,
            rows=[{**trade, "price": "812.4", "value": "4062.0", "orderid": "25120200001", "time": "10:15:00"}],
            fetched_at=AT,
        )
        return user

    user = in_thread(seed)
    with chromium(live_server) as b:
        page = b.page(user, height=700)
        page.route_web_socket(re.compile(r".*/ws/.*"), lambda ws: None)  # the live server has no sockets
        page.goto(f"{live_server.url}/trading/books/")
        expect(page.locator('[data-sum="total"]')).to_have_text(f"{MINUS}₹1,310.75")
        expect(page.locator('[data-sum="realized"]')).to_have_text(f"{MINUS}₹1,310.75")
        assert "neg" in page.locator('[data-sum="total"]').get_attribute("class")
        b.shot(page, "format-books-positions")
        page.goto(f"{live_server.url}/trading/books/?tab=trades")
        row = page.locator("tbody tr").first
        expect(row.locator("td").nth(1)).to_have_text("02 Dec 2026, 10:15:00 IST")
        expect(page.locator("[data-as-of] time")).to_have_text("02 Dec 2026, 10:32:29 IST")
        b.shot(page, "format-books-trades")
        page.goto(f"{live_server.url}/trading/books/?tab=funds")
        expect(page.locator("[data-copy-at]")).to_have_text("02 Dec 2026, 10:32:29 IST")
        expect(page.locator(".stat-value").nth(2)).to_have_text(f"{MINUS}₹1,561.25")
        b.shot(page, "format-books-funds")
    assert b.errors == []
