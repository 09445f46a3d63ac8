"""The whole platform as `make run` starts it: browser flow, registration, and a clean stop.

One stack per module, started exactly as a user would (`make run` in the background, waiting
for the printed URL). The last test stops it with SIGINT (Ctrl-C) and checks that no process
it started is left behind.
"""

from __future__ import annotations

import json
import os
import random
import re
import signal
import socket
import subprocess
import time
import uuid
from pathlib import Path

import httpx
import psutil
import pytest

from brokersim.testing import ROOT
from core.testing import wait_for

pytestmark = [pytest.mark.stack, pytest.mark.slow]
ARTIFACTS = ROOT / "test-artifacts" / "screenshots"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]


def _free(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) != 0


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _brokersim_base() -> int:
    for _ in range(50):
        base = random.randrange(20000, 26000, 10)
        if all(_free(base + d) for d in (1, 2, 3, 3001, 3002, 3003)):
            return base
    raise RuntimeError("no free port range for brokersim")


def _stack_processes(marker: str) -> list[psutil.Process]:
    out = []
    for p in psutil.process_iter(["pid"]):
        try:
            if p.environ().get("ALGOMIRROR_STACK_MARKER") == marker:
                out.append(p)
        except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
            continue
    return out


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("stack")
    marker = uuid.uuid4().hex
    env = {
        k: v
        for k, v in os.environ.items()
        if k
        not in (
            "REDIS_URL",
            "DATABASE_URL",
            "INSTANCE_DIR",
            "BROKERSIM_ACCOUNTS_FILE",
            "CACHE_KEY_PREFIX",
            "CHANNELS_PREFIX",
            "CELERY_QUEUE",
            "MAKEFLAGS",
            "MFLAGS",
            "MAKELEVEL",
        )
    }
    env.update(
        ALGOMIRROR_STACK_MARKER=marker,
        INSTANCE_DIR=str(tmp / "instance"),
        BROKERSIM_ACCOUNTS_FILE=str(tmp / "brokersim" / "accounts.json"),
        WEB_PORT=str(_free_port()),
        FLOWER_PORT=str(_free_port()),
        BROKERSIM_BASE_PORT=str(_brokersim_base()),
        CELERY_CONCURRENCY="4",
        CELERY_WORKERS="1",
    )
    log = open(tmp / "make-run.log", "w+")  # noqa: SIM115
    proc = subprocess.Popen(
        ["make", "run"], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
    )

    def printed_url() -> str | None:
        log.seek(0)
        m = re.search(r"AlgoMirror is up:\s+(http://\S+)", log.read())
        return m.group(1) if m else None

    deadline = time.monotonic() + 180
    wait_for(lambda: printed_url() or proc.poll() is not None, 180, step=0.5)
    url = printed_url()
    if url is None:
        log.seek(0)
        os.killpg(proc.pid, signal.SIGKILL)
        pytest.fail(f"make run did not print its URL:\n{log.read()[-4000:]}")
    accounts_file = Path(env["BROKERSIM_ACCOUNTS_FILE"])
    wait_for(accounts_file.exists, deadline - time.monotonic(), step=0.2)
    yield {"url": url.rstrip("/"), "proc": proc, "marker": marker, "log": log, "env": env}
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGKILL)
    for p in _stack_processes(marker):
        p.kill()
    log.close()


def test_browser_first_admin_adds_three_paper_accounts_and_sees_live_cash(stack):
    from playwright.sync_api import expect, sync_playwright

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    base = stack["url"]
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1360, "height": 900})
        errors: list[str] = []
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.goto(f"{base}/auth/signup/")
        page.screenshot(path=str(ARTIFACTS / "01-signup.png"), full_page=True)
        page.fill("input[name=username]", "owner")
        page.fill("input[name=email]", "owner@example.com")
        page.fill("input[name=password1]", "Very-long-passphrase-42")
        page.fill("input[name=password2]", "Very-long-passphrase-42")
        page.click("form button[type=submit]")
        expect(page.locator("h1")).to_have_text("Dashboard")
        page.screenshot(path=str(ARTIFACTS / "02-dashboard-empty.png"), full_page=True)
        page.click("[data-testid=add-paper]")
        cards = page.locator("[data-account]")
        expect(cards).to_have_count(3)
        expect(page.locator("[data-account][data-status=connected]")).to_have_count(3, timeout=30000)
        for i in range(3):
            expect(cards.nth(i).locator("[data-field=cash]")).to_have_text(re.compile(r"^₹[\d,]+\.\d\d$"))
        expect(page.locator("[data-live-status]")).to_have_text("Live updates: on")
        expect(page.locator("[data-total=connected]")).to_have_text("3")
        page.screenshot(path=str(ARTIFACTS / "03-dashboard-paper-accounts.png"), full_page=True)
        page.goto(f"{base}/accounts/")
        expect(page.locator("tbody tr")).to_have_count(3)
        page.screenshot(path=str(ARTIFACTS / "04-accounts.png"), full_page=True)
        page.goto(f"{base}/accounts/add/")
        page.screenshot(path=str(ARTIFACTS / "05-account-add.png"), full_page=True)
        page.goto(f"{base}/audit/")
        expect(page.locator("tbody tr").first).to_be_visible()
        page.screenshot(path=str(ARTIFACTS / "06-audit-log.png"), full_page=True)
        page.click("[data-theme-toggle]")
        page.goto(f"{base}/")
        expect(page.locator("html")).to_have_attribute("data-theme", "dark")
        page.screenshot(path=str(ARTIFACTS / "07-dashboard-dark.png"), full_page=True)
        browser.close()
    assert not [e for e in errors if "Content Security Policy" in e], errors


def test_browser_option_chain_updates_live_when_the_broker_moves(stack):
    import json

    from playwright.sync_api import expect, sync_playwright

    base = stack["url"]
    sim = json.loads(Path(stack["env"]["BROKERSIM_ACCOUNTS_FILE"]).read_text())[0]
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1500, "height": 1000})
        page.goto(f"{base}/auth/login/")
        page.fill("input[name=login]", "owner")
        page.fill("input[name=password]", "Very-long-passphrase-42")
        page.click("form button[type=submit]")
        page.goto(f"{base}/marketdata/chain/?underlying=NIFTY&strikes=10")
        expect(page.locator("[data-live]")).to_have_text("live")
        expect(page.locator("td[data-f=ltp]")).to_have_count(42)
        spot = page.locator("[data-spot]")
        atm_ce = page.locator("tr.atm-row td[data-f=ltp]").first
        expect(atm_ce).not_to_have_class(re.compile(r"\bstale\b"), timeout=15000)  # live ticks arrived
        page.screenshot(path=str(ARTIFACTS / "08-option-chain.png"), full_page=True)
        httpx.post(f"{sim['host']}/_sim/market", json={"paused": True}, timeout=5)
        page.wait_for_timeout(1000)  # let ticks already in flight land
        before_spot, before_ce = float(spot.inner_text().replace(",", "")), atm_ce.inner_text()
        httpx.post(f"{sim['host']}/_sim/price", json={"underlying": "NIFTY", "move_pct": 1.0}, timeout=5)
        page.wait_for_function(
            "([el, v]) => parseFloat(el.textContent.replace(/,/g, '')) > v",
            arg=[spot.element_handle(), before_spot * 1.009],
            timeout=5000,
        )
        expect(atm_ce).not_to_have_text(before_ce, timeout=5000)
        # A 1 % move shifts the ATM strike by several steps: the highlight follows the spot.
        atm_now = int(page.locator("[data-atm]").inner_text())
        assert abs(atm_now - before_spot * 1.01) <= 25
        expect(page.locator("tr.atm-row")).to_have_attribute("data-strike", str(atm_now))
        page.locator("tr.atm-row td[data-f=ltp]").first.click()
        expect(page.locator("[data-depth-rows] tr")).to_have_count(5, timeout=5000)
        page.screenshot(path=str(ARTIFACTS / "09-option-chain-moved-depth.png"), full_page=True)
        httpx.post(f"{sim['host']}/_sim/market", json={"paused": False}, timeout=5)
        page.goto(f"{base}/marketdata/feed/")
        expect(page.locator('[data-s="headline"]')).to_contain_text("Streaming from", timeout=10000)
        page.screenshot(path=str(ARTIFACTS / "10-feed-monitor.png"), full_page=True)
        page.goto(f"{base}/marketdata/calendar/")
        expect(page.locator("h1")).to_have_text("Trading calendar")
        expect(page.locator("text=Prakash Gurpurb Sri Guru Nanak Dev").first).to_be_visible()
        page.screenshot(path=str(ARTIFACTS / "11-trading-calendar.png"), full_page=True)
        browser.close()


def test_browser_order_on_three_paper_accounts_fills_into_the_books(stack):
    from playwright.sync_api import expect, sync_playwright

    base = stack["url"]
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1360, "height": 900})
        page.goto(f"{base}/auth/login/")
        page.fill("input[name=login]", "owner")
        page.fill("input[name=password]", "Very-long-passphrase-42")
        page.click("form button[type=submit]")
        page.goto(f"{base}/trading/orders/new/")
        for box in page.locator("input[name=accounts]").all():
            box.check()
        page.fill("input[name=symbol]", "SBIN")
        page.select_option("select[name=exchange]", "NSE")
        page.fill("input[name=quantity]", "5")
        page.screenshot(path=str(ARTIFACTS / "12-order-new.png"), full_page=True)
        page.get_by_role("button", name="Review order").click()
        expect(page.locator("dialog[data-confirm-dialog] tbody tr")).to_have_count(3)  # confirm first
        page.get_by_role("button", name="Place order").click()
        expect(page.locator("[data-order]")).to_have_count(3)
        # Live progress: queued → accepted → filled, pushed over Channels (no reload).
        expect(page.locator("[data-order] [data-f=status]", has_text="Filled")).to_have_count(3, timeout=30000)
        expect(page.locator("[data-summary-headline]")).to_have_text("Done on all 3 accounts ✓")  # the outcome, live
        page.screenshot(path=str(ARTIFACTS / "13-order-progress.png"), full_page=True)
        page.goto(f"{base}/trading/books/")
        expect(page.locator('[data-position="NSE:SBIN"]')).to_have_count(3)
        # Live P&L: the LTP cell follows the feed without a reload.
        ltp = page.locator('[data-position="NSE:SBIN"] [data-f=ltp]').first
        first = ltp.inner_text()
        for _ in range(40):
            if ltp.inner_text() != first:
                break
            page.wait_for_timeout(500)
        assert ltp.inner_text() != first, "LTP did not move in 20 s"
        page.screenshot(path=str(ARTIFACTS / "14-books.png"), full_page=True)
        page.get_by_role("link", name="Orders").click()
        expect(page.locator("[data-order]")).to_have_count(3)
        page.screenshot(path=str(ARTIFACTS / "15-books-orders.png"), full_page=True)

        # A trade placed directly at one broker shows as "outside AlgoMirror" after one read.
        info = json.loads(Path(stack["env"]["BROKERSIM_ACCOUNTS_FILE"]).read_text())[0]
        r = httpx.post(
            f"{info['host']}/api/v1/placeorder",
            json={
                "apikey": info["api_key"],
                "strategy": "phone",
                "symbol": "INFY",
                "exchange": "NSE",
                "action": "BUY",
                "quantity": "2",
                "pricetype": "MARKET",
                "product": "MIS",
            },
            timeout=10,
        )
        assert r.json()["status"] == "success"
        page.goto(f"{base}/trading/books/")
        page.on("dialog", lambda d: d.accept())
        page.get_by_role("button", name="Read brokers now").click()
        for _ in range(30):
            if page.locator("text=outside AlgoMirror").count():
                break
            page.wait_for_timeout(1000)
            page.reload()
        expect(page.locator("[data-flag]")).to_have_count(1)
        page.screenshot(path=str(ARTIFACTS / "16-books-reconciliation.png"), full_page=True)
        page.get_by_role("button", name="Adopt broker's 2").click()
        expect(page.locator("[data-flag]")).to_have_count(0)
        expect(page.locator('[data-position="NSE:INFY"]')).to_have_count(1)
        for n, tab in ((17, "Trades"), (18, "Holdings"), (19, "Funds")):
            page.get_by_role("link", name=tab, exact=True).click()
            page.wait_for_load_state()
            if tab == "Trades":  # the phone order is tagged as coming from outside
                expect(page.locator("td .badge", has_text="outside AlgoMirror")).to_have_count(1)
            page.screenshot(path=str(ARTIFACTS / f"{n}-books-{tab.lower()}.png"), full_page=True)

        # Close one position from the books: a reduce-only exit that fills and flattens it.
        page.goto(f"{base}/trading/books/?tab=positions&symbol=INFY")
        page.get_by_role("button", name="Close").click()
        page.get_by_role("button", name="Exit position").click()  # the confirmation
        expect(page.locator("[data-order] [data-f=status]", has_text="Filled")).to_have_count(1, timeout=30000)
        page.screenshot(path=str(ARTIFACTS / "20-position-closed.png"), full_page=True)

        # Halt one account from its books: new orders are refused, the badge says why.
        page.goto(f"{base}/trading/books/")
        page.select_option("select[name=account]", label=info["name"])
        page.get_by_role("button", name="Filter").click()
        page.select_option("select[name=state]", "halted")
        page.fill("input[name=reason]", "broker maintenance")
        page.get_by_role("button", name="Set", exact=True).click()
        expect(page.locator("[data-account-bar] .state-halted")).to_be_visible()
        page.screenshot(path=str(ARTIFACTS / "21-account-halted.png"), full_page=True)
        page.goto(f"{base}/trading/orders/new/")
        expect(page.locator("text=halted: exits only")).to_have_count(1)
        browser.close()


def test_registration_is_closed_and_login_reaches_the_dashboard(stack):
    base = stack["url"]
    with httpx.Client(base_url=base, follow_redirects=True, timeout=20) as c:
        page = c.get("/auth/signup/")
        assert "Registration is closed" in page.text
        login = c.get("/auth/login/")
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', login.text).group(1)
        r = c.post(
            "/auth/login/",
            data={"login": "owner", "password": "Very-long-passphrase-42", "csrfmiddlewaretoken": token},
            headers={"Referer": f"{base}/auth/login/"},
        )
        assert r.status_code == 200 and "<h1>Dashboard</h1>" in r.text
        assert r.text.count("data-account=") == 3
    flower = stack["env"]["FLOWER_PORT"]
    assert httpx.get(f"http://127.0.0.1:{flower}/", timeout=10).status_code == 200


def test_ctrl_c_stops_everything(stack):
    proc, marker = stack["proc"], stack["marker"]
    assert len(_stack_processes(marker)) >= 7  # make, launcher, redis, honcho and its six processes
    os.killpg(proc.pid, signal.SIGINT)  # what Ctrl-C in the terminal does
    proc.wait(60)
    wait_for(lambda: not _stack_processes(marker), 15, step=0.5)
    assert _stack_processes(marker) == []
    web_port = int(stack["url"].rsplit(":", 1)[1])
    assert _free(web_port)
    assert not Path(stack["env"]["BROKERSIM_ACCOUNTS_FILE"]).exists()
