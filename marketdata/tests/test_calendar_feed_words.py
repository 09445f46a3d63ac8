"""The trading-calendar and broker-feed pages in trader words: markets are a choice, past dates and
duplicates are refused with a sentence, no internals in errors, deletes are confirmed, and the feed
says what it is doing ("Streaming from paper-01") instead of its internal states."""

from __future__ import annotations

import datetime as dt
import json
import re
import time

import pytest
from django.utils import timezone

from accounts.tests.browser import chromium, in_thread
from accounts.tests.factories import UserFactory
from marketdata import store
from marketdata.models import MarketHoliday, SpecialTradingSession, TradingHoursTemplate

from .conftest import clear_marketdata_keys


def day(offset: int) -> dt.date:
    return timezone.localdate() + dt.timedelta(days=offset)


@pytest.fixture
def admin_client(client, db):
    client.force_login(UserFactory(username="root", admin=True))
    return client


def add_holiday(client, date, name="Exchange holiday", market="NSE"):
    return client.post("/marketdata/calendar/holidays/", {"date": date, "name": name, "market": market}, follow=True)


def page_text(r) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", r.content.decode()))


def test_market_is_a_choice_not_free_text(admin_client):
    body = admin_client.get("/marketdata/calendar/").content.decode()
    assert re.search(r'<select name="market"[^>]*>\s*<option value="NSE"', body)
    r = add_holiday(admin_client, day(30), market="xyz")
    assert not MarketHoliday.objects.filter(market="xyz").exists()
    assert "Choose a market the calendar knows: NSE or BSE." in page_text(r)


def test_a_past_holiday_is_refused_with_a_sentence(admin_client):
    r = add_holiday(admin_client, "1999-01-26", "Republic Day")
    text = page_text(r)
    assert not MarketHoliday.objects.filter(date="1999-01-26").exists()
    assert "Added" not in text
    assert "26 Jan 1999 has passed: add holidays for today or later." in text


def test_a_duplicate_holiday_is_refused_with_a_sentence(admin_client):
    when = day(40)
    assert "Added the holiday" in page_text(add_holiday(admin_client, when, "Diwali"))
    text = page_text(add_holiday(admin_client, when, "Diwali again"))
    assert f"NSE already has a holiday on {when:%a %d %b %Y}: Diwali." in text
    assert MarketHoliday.objects.filter(date=when, market="NSE").count() == 1
    # The same day on the other market is a different holiday.
    assert "Added the holiday" in page_text(add_holiday(admin_client, when, "Diwali", market="BSE"))


def test_special_session_errors_are_sentences_without_internals(admin_client):
    when = day(10)
    post = {"date": when, "name": "Muhurat trading", "market": "NSE", "start": "18:00", "end": "17:00"}
    text = page_text(admin_client.post("/marketdata/calendar/specials/", post, follow=True))
    assert "The session must end after it starts (17:00 is before 18:00)." in text
    for internal in ("__all__", "Constraint", "special_ends_after_start", "violated"):
        assert internal not in text
    assert not SpecialTradingSession.objects.filter(date=when).exists()
    post.update(start="18:00", end="19:00")
    assert "Added the special session" in page_text(
        admin_client.post("/marketdata/calendar/specials/", post, follow=True)
    )
    text = page_text(admin_client.post("/marketdata/calendar/specials/", post, follow=True))
    assert f"NSE already has a special session called Muhurat trading on {when:%a %d %b %Y}." in text
    post.update(date=day(-1))
    assert "has passed: add special sessions for today or later." in page_text(
        admin_client.post("/marketdata/calendar/specials/", post, follow=True)
    )


def test_delete_asks_first_and_the_page_says_what_went(admin_client):
    h = MarketHoliday.objects.create(date=day(20), name="Holi", market="NSE")
    r = admin_client.get(f"/marketdata/calendar/holiday/{h.pk}/delete/")
    assert r.status_code == 200 and f"Delete the holiday Holi (NSE) on {h.date:%a %d %b %Y}?" in page_text(r)
    assert MarketHoliday.objects.filter(pk=h.pk).exists()
    r = admin_client.post(f"/marketdata/calendar/holiday/{h.pk}/delete/", follow=True)
    assert "Deleted the holiday Holi (NSE" in page_text(r)
    assert not MarketHoliday.objects.filter(pk=h.pk).exists()
    r = admin_client.post(f"/marketdata/calendar/holiday/{h.pk}/delete/", follow=True)
    assert "already deleted" in page_text(r)
    assert admin_client.get(f"/marketdata/calendar/holiday/{h.pk}/delete/").status_code == 404


# ------------------------------------------------------------------ the feed in words


@pytest.mark.parametrize(
    ("status", "headline"),
    [
        ({"state": "ws", "account": "paper-01"}, "Streaming from paper-01"),
        ({"state": "rest"}, "Polling prices (WebSocket down)"),
        ({"state": "connecting"}, "Connecting to a broker…"),
        ({"state": "waiting_for_lock"}, "Standing by: another feed process is streaming"),
        ({"state": "no_accounts"}, "No account to stream from"),
        ({}, "Feed not running"),
    ],
)
def test_feed_states_in_words(status, headline):
    from marketdata import feedwords

    if status:
        status["updated"] = int(time.time() * 1000)
    assert feedwords.headline(status, now_ms=int(time.time() * 1000))[0] == headline


def test_a_feed_that_stopped_writing_is_not_shown_as_streaming():
    from marketdata import feedwords

    now = int(time.time() * 1000)
    text, tone = feedwords.headline({"state": "ws", "account": "paper-01", "updated": now - 60_000}, now_ms=now)
    assert text == "Feed not responding (last heard 60 s ago)" and tone == "down"


@pytest.mark.parametrize(
    ("kind", "account", "reason", "title", "detail"),
    [
        ("lock_acquired", None, "fencing token 1", "Took over the feed", "This feed process now streams prices."),
        ("connected", "paper-01", "start", "Streaming from paper-01", "At start-up."),
        ("connected", "paper-01", "reconnect after stall: no tick for 10 s", "Streaming from paper-01",
         "Reconnected after no price for 10 s."),
        ("connected", "paper-02", "failover after broker closed the socket", "Streaming from paper-02",
         "Switched here after broker closed the socket."),
        ("connected", "paper-01", "paper-01 is healthy again", "Streaming from paper-01",
         "Switched back: paper-01 is healthy again."),
        ("dropped", "paper-01", "stall: no tick for 10 s", "Lost the stream from paper-01", "No price for 10 s."),
        ("connect_failed", "paper-02", "connection refused", "Could not connect to paper-02", "Connection refused."),
        ("rest_polling", None, "no WebSocket works (stall: no tick for 10 s); polling REST",
         "Polling prices (WebSocket down)", "No broker WebSocket works (no price for 10 s)."),
        ("no_accounts", None, "no active account with a readable key", "No account to stream from",
         "No active account with a readable API key."),
    ],
)  # fmt: skip
def test_feed_events_in_words(kind, account, reason, title, detail):
    from marketdata import feedwords

    assert feedwords.event({"ts": 0, "kind": kind, "account": account, "reason": reason}) == {
        "ts": 0,
        "kind": kind,
        "account": account,
        "reason": reason,
        "title": title,
        "detail": detail,
    }


# ------------------------------------------------------------------ in the browser

DEVELOPER_WORDS = ("State", "lock_acquired", "fencing token", "rest_polling", "connect_failed")


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_feed_page_speaks_trader_words_in_a_browser(live_server):
    clear_marketdata_keys()
    now = int(time.time() * 1000)
    r = store.client()
    r.set(
        store.STATUS,
        json.dumps({"state": "ws", "account": "paper-01", "subscribed": ["NSE:SBIN", "NSE_INDEX:NIFTY"],
                    "wanted": 2, "ticks_per_s": 4.5, "ticks_total": 90, "bad_ticks": 0, "last_tick_age_s": 0.3,
                    "pid": 4242, "token": 1, "updated": now}),
    )  # fmt: skip
    for e in (
        {"ts": now - 9000, "kind": "lock_acquired", "account": None, "reason": "fencing token 1"},
        {"ts": now - 8000, "kind": "connected", "account": "paper-01", "reason": "start"},
    ):
        r.lpush(store.EVENTS, json.dumps(e))
    # An administrator: the feed's account is named to them (to anyone else only when it is theirs).
    user = in_thread(lambda: UserFactory(username="viewer", admin=True))
    try:
        with chromium(live_server) as b:
            for dark in (False, True):
                page = b.page(user, dark=dark)
                page.goto(live_server.url + "/marketdata/feed/")
                page.wait_for_timeout(300)  # the first poll of the status JSON has re-rendered the page
                main = page.inner_text("main")
                assert "Streaming from paper-01" in main and "Took over the feed" in main
                assert "At start-up." in main and "4.5" in main
                for word in DEVELOPER_WORDS:
                    assert word not in main, word
                b.shot(page, f"feed-words-{'dark' if dark else 'light'}")
            assert not b.errors, b.errors
    finally:
        clear_marketdata_keys()


def seed_weekly_sessions() -> None:
    for market in ("NSE", "BSE"):
        t = TradingHoursTemplate.objects.create(name=f"{market} equity & derivatives", market=market)
        for weekday in range(5):
            t.sessions.create(weekday=weekday, name="Pre-open", kind="pre_open", start="09:00", end="09:08")
            t.sessions.create(weekday=weekday, name="Regular", start="09:15", end="15:30")


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_calendar_in_a_browser_refuses_the_past_and_deletes_after_a_keyboard_confirmation(live_server):
    admin = in_thread(lambda: UserFactory(username="root", admin=True))
    in_thread(seed_weekly_sessions)  # a transactional test starts without the migration's seed
    when = day(45)
    with chromium(live_server) as b:
        page = b.page(admin)
        page.goto(live_server.url + "/marketdata/calendar/")
        form = page.locator("form[data-holiday-form]")
        form.locator("input[name=date]").fill("1999-01-26")
        form.locator("input[name=name]").fill("Republic Day")
        assert form.locator("select[name=market] option").all_inner_texts() == ["NSE", "BSE"]
        form.locator("select[name=market]").select_option("NSE")
        form.get_by_role("button", name="Add holiday").click()
        assert "26 Jan 1999 has passed: add holidays for today or later." in page.inner_text("main")
        b.shot(page, "calendar-1-past-refused")

        form = page.locator("form[data-holiday-form]")
        form.locator("input[name=date]").fill(when.isoformat())
        form.locator("input[name=name]").fill("Guru Nanak Jayanti")
        form.get_by_role("button", name="Add holiday").click()
        row = page.locator("tr", has_text="Guru Nanak Jayanti")
        assert row.count() == 1 and when.strftime("%d %b %Y") in row.inner_text()

        row.get_by_role("link", name=re.compile("Delete")).focus()
        page.keyboard.press("Enter")
        page.wait_for_url(re.compile(r".*/delete/$"))
        assert "Delete the holiday Guru Nanak Jayanti (NSE)" in page.inner_text("main")
        b.shot(page, "calendar-2-confirm-delete")
        page.get_by_role("button", name="Delete holiday").focus()
        page.keyboard.press("Enter")
        page.wait_for_url(re.compile(r".*/calendar/$"))
        assert "Deleted the holiday Guru Nanak Jayanti" in page.inner_text("main")
        assert page.locator("tr", has_text="Guru Nanak Jayanti").count() == 0

        dark = b.page(admin, dark=True)
        dark.goto(live_server.url + "/marketdata/calendar/")
        b.shot(dark, "calendar-3-dark")
        assert not b.errors, b.errors
