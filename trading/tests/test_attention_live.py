"""An exit needing attention, in a real browser: the dashboard learns of it live (the account's
move to reducing only is pushed; the page renders its cards and banner again), shows it in red,
and its badge leads to the order, red in the books. Screenshots go to test-artifacts/screenshots/."""

from __future__ import annotations

import json
import re

import pytest

from accounts import services as account_services
from accounts.selectors import account_card, account_get_by_id
from trading.models import Order
from trading.tests.factories import OrderFactory
from trading.tests.test_books_live import ARTIFACTS, in_thread, signed_in_page

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]
ROSE_600 = "oklch(0.586 0.253 17.585)"  # Tailwind 4's rose-600, as the browser reports it


def test_an_exit_needing_attention_turns_the_dashboard_and_the_order_red(live_server, client, alice):
    from playwright.sync_api import expect

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    alpha, bravo = (
        account_services.account_create(
            owner=alice, name=name, host_url="http://127.0.0.1:9", ws_url="ws://127.0.0.1:9", api_key=f"k{name:0>60}"
        )
        for name in ("alpha", "bravo")
    )
    sockets: list = []
    with signed_in_page(live_server, client, alice) as (page, errors):
        page.route_web_socket(re.compile(r".*/ws/dashboard/$"), lambda ws: sockets.append(ws))
        page.goto(f"{live_server.url}/")
        expect(page.locator("[data-live-status]")).to_have_text("Live updates: on")
        expect(page.locator("[data-attention-banner]")).to_have_count(0)

        # The exit fails for good: the order needs attention and the account is reducing only
        # (what the send path does), and the account's new card is pushed to the page.
        def exit_fails():
            order = OrderFactory(
                account=alpha,
                action="SELL",
                quantity=7,
                reduce_only=True,
                status=Order.Status.ATTENTION,
                last_error="exit not placed after 3 tries: broker unreachable",
            )
            account_services.account_trading_state_set(
                user=alice, account_id=alpha.pk, state="reducing", reason="exit needs attention"
            )
            return order, account_card(account_get_by_id(pk=alpha.pk))

        order, card = in_thread(exit_fails)
        sockets[-1].send(json.dumps({"type": "account.updated", "data": card}))
        banner = page.locator("[data-attention-banner]")
        expect(banner).to_contain_text("alpha")
        expect(banner).to_contain_text("1 exit not placed")
        badge = page.locator(f'[data-account="{alpha.pk}"] [data-attention-account="{alpha.pk}"]')
        expect(badge).to_have_text("Exit needs attention")
        assert badge.evaluate("e => getComputedStyle(e).backgroundColor") == ROSE_600
        expect(page.locator(f'[data-account="{bravo.pk}"] [data-attention-account]')).to_have_count(0)
        expect(page.locator(f'[data-account="{alpha.pk}"]')).to_contain_text("Reducing only")
        page.screenshot(path=str(ARTIFACTS / "attention-1-dashboard.png"), full_page=True)

        # The badge leads to that account's orders needing attention: the row is red.
        badge.click()
        page.wait_for_url(re.compile(r".*status=attention.*"))
        row = page.locator(f'tr[data-order="{order.pk}"]')
        expect(row).to_have_count(1)
        expect(page.locator("tr[data-order]")).to_have_count(1)
        status = row.locator(".status-attention")
        expect(status).to_have_text("Needs attention")
        assert status.evaluate("e => getComputedStyle(e).backgroundColor") == ROSE_600
        assert "broker unreachable" in row.inner_text()
        page.screenshot(path=str(ARTIFACTS / "attention-2-books-orders.png"), full_page=True)

        page.goto(f"{live_server.url}/accounts/")
        expect(page.locator(f'[data-attention-account="{alpha.pk}"]')).to_have_text("Exit needs attention")
        page.screenshot(path=str(ARTIFACTS / "attention-3-accounts.png"), full_page=True)
    assert errors == []
