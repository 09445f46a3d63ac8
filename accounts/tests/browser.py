"""Headless Chromium for page tests in accounts and the apps above it (trading's tests keep their
own helper; the layers keep accounts from importing it). Screenshots go to test-artifacts/screenshots/."""

from __future__ import annotations

import contextlib
from concurrent.futures import ThreadPoolExecutor

from django.conf import settings
from django.db import connection
from django.test import Client

from brokersim.testing import ROOT

ARTIFACTS = ROOT / "test-artifacts" / "screenshots"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-sync"]


def in_thread(fn):
    """Database work while Playwright's sync API holds an event loop in the test's thread (Django
    refuses the ORM there); the test must use a transactional database so the server sees it."""

    def run():
        try:
            return fn()
        finally:
            connection.close()

    with ThreadPoolExecutor(1) as pool:
        return pool.submit(run).result()


class Browser:
    """One Chromium; `page()` opens a fresh context (its own cookies), signed in when given a user."""

    def __init__(self, pw, live_server):
        self.live_server = live_server
        self.browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        self.errors: list[str] = []

    def page(self, user=None, *, dark: bool = False, height: int = 900):
        context = self.browser.new_context(
            viewport={"width": 1280, "height": height}, color_scheme="dark" if dark else "light"
        )
        if user is not None:
            client = Client()
            in_thread(lambda: client.force_login(user))
            cookie = client.cookies[settings.SESSION_COOKIE_NAME].value
            context.add_cookies([{"name": settings.SESSION_COOKIE_NAME, "value": cookie, "url": self.live_server.url}])
        page = context.new_page()
        page.on("console", lambda m: self.errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: self.errors.append(str(e)))
        return page

    def shot(self, page, name: str) -> None:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


@contextlib.contextmanager
def chromium(live_server):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        b = Browser(pw, live_server)
        try:
            yield b
        finally:
            b.browser.close()
