"""The broker-session and semi-auto banners in a real browser (issue 18, points 4 and 6): the
dashboard and the accounts list say which accounts take exits only because their broker session
is unknown, and which wait for approval at OpenAlgo. Screenshots go to test-artifacts/screenshots/."""

from __future__ import annotations

import re

import pytest

from accounts import services as account_services
from accounts.tests.factories import account_on

from .test_books_live import ARTIFACTS, in_thread, signed_in_page

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def test_the_dashboard_and_accounts_list_show_which_accounts_need_the_trader(live_server, client, alice, paper):
    from playwright.sync_api import expect

    dead_sim, semi_sim = paper[2], paper[3]
    try:
        dead = in_thread(lambda: account_on(dead_sim, owner=alice, name="Kite-dead-token"))
        semi = in_thread(lambda: account_on(semi_sim, owner=alice, name="Action-center"))
        in_thread(lambda: [account_services.account_check(account_id=a.pk) for a in (dead, semi)])
        dead_sim.sim("POST", "profile", {"profile": "dead_token"})
        in_thread(lambda: account_services.account_check(account_id=dead.pk))
        in_thread(lambda: account_services.account_mark_semi_auto(account=semi, evidence="order 7: queued"))
        with signed_in_page(live_server, client, alice, height=900) as (page, errors):
            page.route_web_socket(re.compile(r".*/ws/dashboard/$"), lambda ws: None)
            page.goto(f"{live_server.url}/")
            session = page.locator('[data-banner="session-unknown"]')
            expect(session).to_be_visible()
            expect(session).to_contain_text("Broker session unknown on Kite-dead-token")
            expect(page.locator('[data-banner="semi-auto"]')).to_contain_text(
                "Semi-auto mode at OpenAlgo on Action-center"
            )
            card = page.locator(f'[data-account="{dead.pk}"]')
            expect(card.locator('[data-field="status"]')).to_have_text("Broker session unknown")
            expect(card).to_contain_text("Reducing only")
            expect(page.locator(f'[data-account="{semi.pk}"] [data-field="order-mode"]')).to_have_text("semi-auto")
            expect(page.locator('[data-total="connected"]')).to_have_text("1")
            page.screenshot(path=str(ARTIFACTS / "dashboard-broker-banners.png"), full_page=True)
            page.goto(f"{live_server.url}/accounts/")
            expect(page.locator('[data-banner="session-unknown"]')).to_be_visible()
            expect(page.locator('[data-order-mode="semi_auto"]')).to_be_visible()
            page.screenshot(path=str(ARTIFACTS / "accounts-broker-banners.png"), full_page=True)
        assert errors == []
    finally:
        dead_sim.sim("POST", "reset")
