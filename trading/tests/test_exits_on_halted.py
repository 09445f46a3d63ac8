"""Issue 19, point 2: exits as exits. On a reducing or halted account any order that reduces the
position goes out as a reduce-only exit (partial included), trimmed at send time to what the
broker holds and never flipping; an order that would open or increase a position is refused with
a sentence naming the account, or, with "skip halted/reducing accounts for entries", leaves that
account out and says why.

Real parts: PostgreSQL, Redis and brokersim; the workers' work is run here by calling the same
services the tasks call (trading/tests/test_batch_outcomes.settle)."""

from __future__ import annotations

import re

import pytest

from accounts.tests.browser import chromium, in_thread
from accounts.tests.factories import account_on
from trading import services
from trading.models import Order, OrderBatch, Position
from trading.services import Leg, OrderRefused
from trading.tests.test_batch_outcomes import ORDER, page_text, settle, summary

Status = Order.Status
pytestmark = pytest.mark.django_db


@pytest.fixture
def two(alice, paper_clean):
    return [account_on(s, owner=alice, name=f"paper-0{i + 1}") for i, s in enumerate(paper_clean[:2])]


def hold_long(alice, account, quantity: int = 10) -> None:
    """A long position, filled at the broker and in our books."""
    services.orders_create(user=alice, accounts=[account], legs=[Leg("SBIN", "NSE", "BUY", quantity)])
    settle([account])
    assert Position.objects.get(account=account, symbol="SBIN").quantity == quantity


def set_state(alice, account, state: str) -> None:
    services.account_trading_state_set(user=alice, account_id=account.pk, state=state, reason="drill")
    account.refresh_from_db()


def broker_qty(sim) -> int:
    return int(sim.ok("openposition", strategy="t", symbol="SBIN", exchange="NSE", product="MIS")["quantity"])


def post_order(client, accounts, **terms):
    data = ORDER | terms | {"accounts": [a.pk for a in accounts]}
    return client.post("/trading/orders/new/", data, follow=True)


def test_sell_5_of_10_on_a_reducing_account_goes_out_as_a_5_lot_exit_and_fills(client, alice, two, paper_clean):
    account, sim = two[0], paper_clean[0]
    hold_long(alice, account)
    set_state(alice, account, "reducing")
    client.force_login(alice)
    # The confirmation says it goes as an exit.
    shown = page_text(post_order(client, [account], action="SELL", quantity=5).content.decode())
    assert "exit: reduce-only" in shown and "only exits are allowed" not in shown
    r = post_order(client, [account], action="SELL", quantity=5, confirmed="1")
    assert r.redirect_chain, page_text(r.content.decode())[:400]
    batch = OrderBatch.objects.latest("pk")
    order = batch.orders.get()
    assert (order.action, order.quantity, order.reduce_only) == ("SELL", 5, True)
    settle([account])
    order.refresh_from_db()
    assert order.status == Status.COMPLETE and order.filled_quantity == 5
    assert [(r["action"], r["quantity"]) for r in sim.ledger()] == [("BUY", 10), ("SELL", 5)]
    assert broker_qty(sim) == 5
    assert Position.objects.get(account=account, symbol="SBIN").quantity == 5
    assert summary(client, batch.pk)["rows"][account.name].startswith("filled 5 @")


def test_sell_15_of_10_on_a_reducing_account_is_trimmed_to_10_and_never_flips(alice, two, paper_clean):
    account, sim = two[0], paper_clean[0]
    hold_long(alice, account)
    set_state(alice, account, "reducing")
    batch = services.orders_create(user=alice, accounts=[account], legs=[Leg("SBIN", "NSE", "SELL", 15)])
    assert batch.orders.get().reduce_only
    settle([account])
    order = batch.orders.get()
    assert order.status == Status.COMPLETE and order.quantity == 10 and "trimmed from 15" in order.note
    assert [(r["action"], r["quantity"]) for r in sim.ledger()] == [("BUY", 10), ("SELL", 10)]
    assert broker_qty(sim) == 0  # flat at the broker, not short 5
    book = sim.ok("positionbook")["data"]
    assert all(int(float(p["quantity"])) >= 0 for p in book if p["symbol"] == "SBIN")
    assert Position.objects.get(account=account, symbol="SBIN").quantity == 0


def test_a_short_is_bought_back_on_a_halted_account_but_never_added_to(alice, two, paper_clean):
    account, sim = two[0], paper_clean[0]
    services.orders_create(user=alice, accounts=[account], legs=[Leg("SBIN", "NSE", "SELL", 4)])
    settle([account])
    set_state(alice, account, "halted")
    with pytest.raises(OrderRefused, match=r"paper-01 is halted: only exits are allowed \(drill\), and SELL 1 SBIN"):
        services.orders_create(user=alice, accounts=[account], legs=[Leg("SBIN", "NSE", "SELL", 1)])
    with pytest.raises(OrderRefused, match="paper-01 .* BUY 1 SBIN would open or increase"):  # another product
        services.orders_create(user=alice, accounts=[account], legs=[Leg("SBIN", "NSE", "BUY", 1, product="CNC")])
    batch = services.orders_create(user=alice, accounts=[account], legs=[Leg("SBIN", "NSE", "BUY", 3)])
    settle([account])
    assert batch.orders.get().status == Status.COMPLETE
    assert broker_qty(sim) == -1


def test_buy_on_a_halted_account_is_refused_unless_skipped_then_the_others_get_it(client, alice, two, paper_clean):
    active, halted = two
    set_state(alice, halted, "halted")
    client.force_login(alice)
    # Without skip: refused as a whole, naming the account, nothing written or sent.
    for confirmed in ("", "1"):
        shown = page_text(post_order(client, two, confirmed=confirmed).content.decode())
        assert "paper-02 is halted: only exits are allowed (drill), and BUY 5 SBIN would open or increase" in shown
    assert not OrderBatch.objects.exists()
    # With skip: the confirmation lists the skipped account and why; only the other is priced.
    r = post_order(client, two, skip_entries="on")
    html = r.content.decode()
    assert "data-confirm-skipped" in html
    skipped = page_text(html.split("data-confirm-skipped", 1)[1].split("</div>", 1)[0])
    assert "paper-02" in skipped and "halted (drill): BUY 5 SBIN would open or increase a position" in skipped
    assert "on 1 account(s)?" in page_text(html)
    r = post_order(client, two, skip_entries="on", confirmed="1")
    shown = page_text(r.content.decode())
    batch = OrderBatch.objects.get()
    assert f"M-{batch.pk} sent to 1 account" in shown and f"M-{batch.pk} skipped paper-02: halted (drill)" in shown
    assert list(batch.orders.values_list("account__name", flat=True)) == ["paper-01"]
    assert batch.skipped == [
        {
            "account_id": halted.pk,
            "account": "paper-02",
            "why": "halted (drill): BUY 5 SBIN would open or increase a position, and only exits go there",
        }
    ]
    settle(two)
    assert len(paper_clean[0].ledger()) == 1 and paper_clean[1].ledger() == []
    s = summary(client, batch.pk)
    assert s["headline"] == "Done on all 1 accounts ✓" or s["headline"].startswith("Done")
    assert "paper-02 skipped halted (drill)" in page_text(s["html"].split("data-summary-skipped", 1)[1])


def test_skipping_every_account_sends_nothing_and_says_why(alice, two):
    for a in two:
        set_state(alice, a, "reducing")
    with pytest.raises(OrderRefused, match=r"nothing to send: every account was skipped \(paper-01: reducing only"):
        services.orders_create(user=alice, accounts=two, legs=[Leg("SBIN", "NSE", "BUY", 1)], skip_entries=True)
    assert not Order.objects.exists()


def test_an_exit_on_a_reducing_account_is_kept_when_skipping_entries(alice, two, paper_clean):
    """Skip leaves out only accounts where the order is an entry: an exit still goes."""
    hold_long(alice, two[0])
    set_state(alice, two[0], "reducing")
    batch = services.orders_create(user=alice, accounts=two, legs=[Leg("SBIN", "NSE", "SELL", 4)], skip_entries=True)
    orders = {o.account.name: o for o in batch.orders.select_related("account")}
    assert orders["paper-01"].reduce_only and not orders["paper-02"].reduce_only  # an entry (short) on the active one
    assert batch.skipped == []


@pytest.mark.django_db(transaction=True)
def test_the_order_form_skips_a_halted_account_in_the_dialog_and_on_the_outcome(live_server, alice, paper_clean):
    from playwright.sync_api import expect

    def setup():
        accounts = [account_on(s, owner=alice, name=f"paper-0{i + 1}") for i, s in enumerate(paper_clean[:2])]
        services.account_trading_state_set(user=alice, account_id=accounts[1].pk, state="halted", reason="drill")
        return accounts

    in_thread(setup)
    with chromium(live_server) as b:
        page = b.page(alice)
        page.goto(f"{live_server.url}/trading/orders/new/")
        page.get_by_label("paper-01").check()
        page.get_by_label("paper-02 (halted: exits only)").check()
        page.fill("#id_symbol", "SBIN")
        page.fill("#id_quantity", "5")
        page.get_by_role("button", name="Review order").click()
        expect(page.locator(".msg-error")).to_contain_text("paper-02 is halted: only exits are allowed (drill)")
        b.shot(page, "order-halted-refused")

        page.get_by_label("Skip halted/reducing accounts for entries").check()
        page.get_by_role("button", name="Review order").click()
        dialog = page.locator("dialog[data-confirm-dialog]")
        expect(dialog).to_be_visible()
        expect(dialog.locator("tbody tr")).to_have_count(1)
        expect(dialog.locator("[data-confirm-skipped]")).to_contain_text("paper-02 — halted (drill)")
        assert page.evaluate("document.activeElement.hasAttribute('data-confirm-ok')")
        b.shot(page, "order-skip-confirm")
        page.keyboard.press("Enter")
        page.wait_for_url(re.compile(r"/trading/orders/\d+/$"))
        expect(page.locator("[data-messages]")).to_contain_text("skipped paper-02: halted (drill)")
        expect(page.locator("[data-summary-skipped]")).to_contain_text("paper-02")
        b.shot(page, "order-skip-outcome")
        # (live_server serves no WebSocket: the page's live stream is tested in test_batch_pages_live)
        assert not [e for e in b.errors if "WebSocket" not in e], b.errors
    assert in_thread(lambda: list(Order.objects.values_list("account__name", flat=True))) == ["paper-01"]
