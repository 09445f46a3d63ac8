"""State you can see (issue 19, point 9): a halted or reducing account says so first, in red or
amber, and its connectivity no longer shows a green "Connected"; dashboard cards lead to that
account's books; paper accounts are marked Paper."""

from __future__ import annotations

import json
import re

import pytest
from django.test import override_settings

from accounts.models import TradingAccount

from .browser import chromium, in_thread
from .factories import TradingAccountFactory

HALTED, REDUCING = TradingAccount.TradingState.HALTED, TradingAccount.TradingState.REDUCING


def connected(owner, name, state=TradingAccount.TradingState.ACTIVE, **kw) -> TradingAccount:
    a = TradingAccountFactory(owner=owner, name=name, **kw)
    TradingAccount.objects.filter(pk=a.pk).update(
        status=TradingAccount.Status.CONNECTED, trading_state=state, halt_reason="" if state == "active" else "test"
    )
    a.refresh_from_db()
    return a


@pytest.mark.django_db
def test_paper_accounts_are_marked_paper(client, alice, tmp_path):
    sims = tmp_path / "accounts.json"
    sims.write_text(json.dumps([{"host": "http://127.0.0.1:7001", "api_key": "x" * 64}]))
    with override_settings(BROKERSIM_ACCOUNTS_FILE=sims):
        sim = TradingAccountFactory(owner=alice, name="on-brokersim", host_url="http://127.0.0.1:7001/")
    sandbox = TradingAccountFactory(owner=alice, name="analyzer", broker="sandbox")
    real = TradingAccountFactory(owner=alice, name="real-kite", broker="zerodha")
    assert (sim.is_paper, sandbox.is_paper, real.is_paper) == (True, True, False)
    client.force_login(alice)
    for url in ("/", "/accounts/"):
        page = client.get(url).content.decode()
        assert page.count("data-paper") == 2, url


@pytest.mark.django_db
def test_dashboard_cards_link_to_their_accounts_books(client, alice):
    a = connected(alice, "alpha")
    client.force_login(alice)
    page = client.get("/").content.decode()
    assert f'href="/trading/books/?account={a.pk}"' in page
    books = client.get(f"/trading/books/?account={a.pk}").content.decode()
    assert f'<option value="{a.pk}" selected' in books


@pytest.mark.django_db(transaction=True)
def test_trading_state_comes_before_connectivity_on_the_dashboard_and_accounts_list(live_server, alice):
    def setup():
        return (
            connected(alice, "alpha"),
            connected(alice, "bravo", HALTED),
            connected(alice, "charlie", REDUCING),
        )

    alpha, bravo, charlie = in_thread(setup)
    with chromium(live_server) as b:
        for dark in (False, True):
            page = b.page(alice, dark=dark)
            page.route_web_socket(re.compile(r".*/ws/dashboard/$"), lambda ws: None)
            page.goto(f"{live_server.url}/")
            card = page.locator(f"[data-account='{bravo.pk}']")
            badges = card.locator(".badge")
            assert badges.first.inner_text() == "Halted"
            assert "state-halted" in badges.first.get_attribute("class")
            status = card.locator("[data-field=status]")
            assert "badge-connected" not in status.get_attribute("class")
            assert "state-reducing" in page.locator(f"[data-account='{charlie.pk}'] .badge").first.get_attribute(
                "class"
            )
            assert "badge-connected" in page.locator(f"[data-account='{alpha.pk}'] [data-field=status]").get_attribute(
                "class"
            )
            b.shot(page, f"state-badges-dashboard-{'dark' if dark else 'light'}")
            page.screenshot(path=f"/tmp/hform-badges-dashboard-{'dark' if dark else 'light'}.png", full_page=True)
            page.goto(f"{live_server.url}/accounts/")
            cell = page.locator(f"[data-account-state='{bravo.pk}']")
            assert cell.locator(".badge").first.inner_text() == "Halted"
            assert "badge-connected" not in cell.locator("[data-field=status]").get_attribute("class")
            page.screenshot(path=f"/tmp/hform-badges-list-{'dark' if dark else 'light'}.png", full_page=True)
            page.context.close()
        assert not b.errors


@pytest.mark.django_db(transaction=True)
def test_a_live_update_keeps_a_halted_cards_connectivity_muted(live_server, alice):
    bravo = in_thread(lambda: connected(alice, "bravo", HALTED))
    sockets = []
    with chromium(live_server) as b:
        page = b.page(alice)
        page.route_web_socket(re.compile(r".*/ws/dashboard/$"), lambda ws: sockets.append(ws))
        page.goto(f"{live_server.url}/")
        page.wait_for_function("() => true")
        assert sockets
        from accounts.selectors import account_card

        card = in_thread(lambda: account_card(TradingAccount.objects.get(pk=bravo.pk)))
        card["latency_ms"] = 42
        sockets[0].send(json.dumps({"type": "account.updated", "data": card}))
        page.wait_for_selector(f"[data-account='{bravo.pk}'] [data-field=latency]:has-text('42 ms')")
        assert "badge-connected" not in page.locator(f"[data-account='{bravo.pk}'] [data-field=status]").get_attribute(
            "class"
        )
        assert not b.errors
