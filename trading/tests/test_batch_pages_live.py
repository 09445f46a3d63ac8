"""Issue 19 in a real browser: the confirmation before money moves is a modal dialog (focus on
its confirm button, Esc cancels), a mirrored order's page tells each account's real outcome as it
arrives, close everything shows the leg it could not close with a Retry that closes it, and "Read
brokers now" refreshes a broker-copied tab in place.

Django's live server serves the pages and brokersim the broker; Playwright stands in for the
batch page's socket (the test pushes the update a worker's send would announce), and the workers'
services run in the test's own thread. Screenshots go to /tmp/hbatch-*.png."""

from __future__ import annotations

import json
import re
import time

import pytest
from django.utils import timezone

from accounts.tests.factories import account_on
from marketdata import store
from trading import selectors, services
from trading.models import BrokerBook, Order, OrderBatch
from trading.tests.test_batch_outcomes import broker_positions, open_three_legs, settle
from trading.tests.test_books_live import in_thread, signed_in_page

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]
SHOTS = "/tmp/hbatch-{}.png"


class BatchSocket:
    """The server side of the batch page's socket: the test pushes what a worker would."""

    def __init__(self, page):
        self.ws = None
        page.route_web_socket(re.compile(r".*/ws/batches/\d+/$"), self._connect)
        # The books' own sockets (prices, fills) answer nothing here: the live server has none.
        page.route_web_socket(re.compile(r".*/ws/(marketdata|dashboard)/$"), lambda ws: None)

    def _connect(self, ws):
        self.ws = ws

    def updated(self, order_id: int):
        row = in_thread(lambda: selectors.order_row(Order.objects.get(pk=order_id)))
        self.ws.send(json.dumps({"type": "order.updated", "data": row}))


def test_the_order_is_confirmed_in_a_dialog_then_its_outcome_arrives_live(live_server, client, alice, paper_clean):
    from playwright.sync_api import expect

    accounts = [account_on(s, owner=alice, name=f"paper-0{i + 1}") for i, s in enumerate(paper_clean[:2])]
    with signed_in_page(live_server, client, alice) as (page, errors):
        socket = BatchSocket(page)
        page.goto(f"{live_server.url}/trading/orders/new/")
        for a in accounts:
            page.get_by_label(a.name).check()
        page.fill("#id_symbol", "SBIN")
        page.fill("#id_quantity", "5")
        page.get_by_role("button", name="Review order").click()

        dialog = page.locator("dialog[data-confirm-dialog]")
        expect(dialog).to_be_visible()
        assert page.evaluate("document.querySelector('dialog[data-confirm-dialog]').matches(':modal')")
        assert page.evaluate("document.activeElement.hasAttribute('data-confirm-ok')")  # focus on confirm
        expect(dialog.locator("tbody tr")).to_have_count(2)
        expect(dialog).to_contain_text("paper-02")
        page.screenshot(path=SHOTS.format("1-order-confirm"), full_page=True)

        page.keyboard.press("Escape")  # cancels: back to the form, values kept, nothing sent
        expect(dialog).to_be_hidden()
        assert page.input_value("#id_symbol") == "SBIN"
        assert in_thread(lambda: Order.objects.count()) == 0

        page.get_by_role("button", name="Review again").click()
        expect(page.locator("dialog[data-confirm-dialog]")).to_be_visible()
        page.keyboard.press("Enter")  # the focused button: place it
        page.wait_for_url(re.compile(r"/trading/orders/\d+/$"))
        batch = in_thread(lambda: OrderBatch.objects.get())
        name = f"M-{batch.pk}"
        expect(page.locator("h1")).to_contain_text(name)
        expect(page.locator("[data-messages]")).to_contain_text(f"{name} sent to 2 accounts")
        expect(page.locator("[data-terms]")).to_contain_text("MARKET · MIS")
        headline = page.locator("[data-summary-headline]")
        expect(headline).to_contain_text("Working: 0 of 2")

        in_thread(lambda: settle(accounts))  # the workers send it and read the fills
        for pk in in_thread(lambda: list(batch.orders.values_list("pk", flat=True))):
            socket.updated(pk)
        expect(headline).to_have_text("Done on all 2 accounts ✓")
        expect(page.locator("[data-summary-text]").first).to_contain_text("filled 5 @ ₹")
        expect(page.locator('[data-f="status"]').first).to_have_text("Filled")
        page.screenshot(path=SHOTS.format("2-order-done"), full_page=True)
    assert errors == []


def test_close_everything_names_the_leg_left_open_and_retry_closes_it(
    live_server, client, alice, paper_clean, settings
):
    from playwright.sync_api import expect

    settings.EXIT_MAX_ATTEMPTS = 1
    settings.ORDER_STATUS_CONFIRM_SECONDS = 0  # the broker's reject is confirmed by the next read
    sim = paper_clean[0]
    account = account_on(sim, owner=alice, name="paper-03")
    ce, pe = in_thread(lambda: open_three_legs(alice, account, sim))
    for symbol, exchange in ((ce, "NFO"), (pe, "NFO"), ("SBIN", "NSE")):  # what the feed would keep fresh
        ltp = sim.ok("quotes", symbol=symbol, exchange=exchange)["data"]["ltp"]
        record = {"ltp": ltp, "ts": int(time.time() * 1000), "src": "test"}
        store.client().hset(store.PRICES, f"{exchange}:{symbol}", json.dumps(record))
    sim.sim("POST", "fault", {"endpoint": "placeorder", "kind": "reject", "value": "RMS: blocked", "count": 1})
    with signed_in_page(live_server, client, alice, height=1000) as (page, errors):
        socket = BatchSocket(page)
        page.goto(f"{live_server.url}/trading/books/?account={account.pk}")
        page.get_by_role("button", name="Close everything").click()
        dialog = page.locator("dialog[data-confirm-dialog]")
        expect(dialog).to_be_visible()
        for symbol, side, qty in ((ce, "SELL", "1950"), (pe, "BUY", "65"), ("SBIN", "SELL", "10")):
            cells = dialog.locator("tbody tr").filter(has_text=symbol).locator("td")
            expect(cells.nth(1)).to_have_text(side)
            expect(cells.nth(2)).to_have_text(qty)
            expect(cells.nth(5)).to_contain_text("₹")  # the estimated value, at the LTP
        page.screenshot(path=SHOTS.format("3-close-confirm"), full_page=True)
        page.keyboard.press("Enter")
        page.wait_for_url(re.compile(r"/closing/\w+/$"))
        expect(page.locator("[data-close-state]")).to_contain_text("Cancelling open orders")
        ticket = page.url.rstrip("/").rsplit("/", 1)[1]

        # The worker closes the account; the page looks again by itself and lands on the exit.
        in_thread(lambda: services.account_close_tracked(account_id=account.pk, user_id=alice.pk, ticket=ticket))
        page.wait_for_url(re.compile(r"/trading/orders/\d+/$"), timeout=10000)

        def workers():
            settle([account])
            later = timezone.now() + timezone.timedelta(minutes=5)
            for pk in Order.objects.filter(status=Order.Status.UNKNOWN).values_list("pk", flat=True):
                services.order_reconcile(order_id=pk, now=later)
            return list(Order.objects.filter(reduce_only=True).values_list("pk", flat=True))

        for pk in in_thread(workers):
            socket.updated(pk)
        row = page.locator("[data-summary-account]")
        expect(row).to_contain_text(f"{pe}: 65 still open (2 other legs flat) ✗")
        expect(page.locator("[data-summary-headline]")).to_have_text("1 of 1 account needs you ✗")
        assert broker_positions(sim) == {pe: -65}
        page.screenshot(path=SHOTS.format("4-close-leg-open"), full_page=True)

        row.get_by_role("button", name="Retry").click()
        cells = page.locator("dialog[data-confirm-dialog] tbody tr").filter(has_text=pe).locator("td")
        expect(cells.nth(1)).to_have_text("BUY")
        expect(cells.nth(2)).to_have_text("65")
        page.keyboard.press("Enter")
        page.wait_for_url(re.compile(r"/trading/orders/\d+/$"))
        expect(page.locator("h1")).to_contain_text("Exit")
        retry_ids = in_thread(
            lambda: (
                settle([account])
                or list(Order.objects.filter(batch__note__startswith="retry").values_list("pk", flat=True))
            )
        )
        for pk in retry_ids:
            socket.updated(pk)
        expect(page.locator("[data-summary-account]")).to_contain_text("flat ✓")
        expect(page.locator("[data-summary-headline]")).to_have_text("Done: 1 account flat ✓")
        assert broker_positions(sim) == {}
        page.screenshot(path=SHOTS.format("5-retry-flat"), full_page=True)
    assert errors == []


def test_read_brokers_now_refreshes_the_tab_in_place(live_server, client, alice):
    from playwright.sync_api import expect

    from accounts import services as account_services

    account = account_services.account_create(
        owner=alice, name="alpha", host_url="http://127.0.0.1:9", ws_url="ws://127.0.0.1:9", api_key="k" * 61
    )
    before = timezone.now() - timezone.timedelta(minutes=3)
    BrokerBook.objects.create(account=account, kind="trades", ok=True, rows=[], fetched_at=before)
    with signed_in_page(live_server, client, alice) as (page, errors):
        page.goto(f"{live_server.url}/trading/books/?tab=trades")
        expect(page.locator("[data-as-of]")).to_contain_text("alpha")
        page.evaluate("window.__sameDocument = true")
        page.get_by_role("button", name="Read brokers now").click()
        expect(page.get_by_role("button", name="Reading brokers…")).to_be_visible()

        def broker_answers():  # what the worker's read stores
            trade = {"orderid": "T1", "symbol": "INFY", "exchange": "NSE", "product": "MIS", "action": "BUY"}
            trade |= {"quantity": 3, "price": "1500", "value": "4500", "strategy": "x", "time": "10:15:00"}
            BrokerBook.objects.filter(account=account).update(rows=[trade], fetched_at=timezone.now())

        in_thread(broker_answers)
        expect(page.locator("[data-book] tbody")).to_contain_text("INFY", timeout=10000)
        expect(page.locator("[data-refresh-note]")).to_have_text("Read just now ✓")
        assert page.evaluate("window.__sameDocument") is True  # never reloaded
        page.screenshot(path=SHOTS.format("6-books-refreshed"), full_page=True)
    assert errors == []
