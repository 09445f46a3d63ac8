"""One broker account, once (issue 19, point 1): the same OpenAlgo URL and API key are refused
under a second name, for every user, by a keyed fingerprint (never the key); two accounts on one
OpenAlgo server with different keys are warned about, not refused."""

from __future__ import annotations

import importlib
import io

import pytest
from django.apps import apps as global_apps
from django.core.management import call_command
from django.db import IntegrityError, transaction

from accounts import crypto, services
from accounts.models import TradingAccount

from .browser import chromium, in_thread
from .factories import TradingAccountFactory, account_on


def form(sim, **over) -> dict:
    d = {"name": "second", "host_url": sim.host, "ws_url": sim.ws_url, "api_key": sim.api_key, "is_active": "on"}
    return d | over


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("http://127.0.0.1:5000", "http://127.0.0.1:5000/"),
        ("http://127.0.0.1:5000", "HTTP://127.0.0.1:5000"),
        ("http://localhost:5000", "http://127.0.0.1:5000"),
        ("https://algo.example.com", "https://ALGO.example.com:443/"),
        ("http://algo.example.com", "https://algo.example.com"),
        ("https://algo.example.com/openalgo", "https://algo.example.com/openalgo/"),
    ],
)
def test_the_fingerprint_sees_one_server_however_its_url_is_written(settings, a, b):
    assert crypto.account_fingerprint(a, "k" * 40) == crypto.account_fingerprint(b, "k" * 40)
    assert crypto.account_fingerprint(a, "k" * 40) != crypto.account_fingerprint(a, "k" * 39 + "j")


def test_the_fingerprint_is_keyed_by_the_server_secret_and_holds_no_key(settings):
    fp = crypto.account_fingerprint("http://127.0.0.1:5000", "secret-key-" * 4)
    assert "secret-key" not in fp and len(fp) == 64
    settings.SECRET_KEY = "another-installation-" * 3
    assert crypto.account_fingerprint("http://127.0.0.1:5000", "secret-key-" * 4) != fp


@pytest.mark.django_db
def test_the_same_host_and_key_under_a_second_name_is_refused_on_the_add_page(client, alice, paper_clean):
    sim = paper_clean[0]
    client.force_login(alice)
    assert client.post("/accounts/add/", form(sim, name="first")).status_code == 302
    r = client.post("/accounts/add/", form(sim, host_url=sim.host + "/"))
    body = r.content.decode()
    assert r.status_code == 200
    assert "This broker account is already added here as “first”" in body
    assert TradingAccount.objects.filter(owner=alice).count() == 1
    first = TradingAccount.objects.get()
    assert first.key_fingerprint and sim.api_key not in first.key_fingerprint


@pytest.mark.django_db
def test_another_users_account_is_refused_without_saying_whose(client, alice, charlie, paper_clean):
    sim = paper_clean[0]
    account_on(sim, owner=charlie, name="charlies-own")
    client.force_login(alice)
    r = client.post("/accounts/add/", form(sim, save_anyway="on"))
    body = r.content.decode()
    assert "This broker account is already added to AlgoMirror" in body
    assert "charlie" not in body
    assert not TradingAccount.objects.filter(owner=alice).exists()


@pytest.mark.django_db
def test_the_service_refuses_a_duplicate_too_and_the_database_backs_it(alice, charlie, paper_clean):
    sim = paper_clean[0]
    first = account_on(sim, owner=alice, name="first")
    with pytest.raises(services.DuplicateAccount):
        account_on(sim, owner=charlie, name="again")
    with pytest.raises(IntegrityError), transaction.atomic():
        TradingAccount.objects.create(
            owner=charlie,
            name="behind-the-back",
            host_url=sim.host,
            ws_url=sim.ws_url,
            api_key_encrypted=crypto.encrypt(sim.api_key),
            api_key_last4=sim.api_key[-4:],
            key_fingerprint=first.key_fingerprint,
        )


@pytest.mark.django_db
def test_an_edit_that_would_collide_is_refused(client, alice, paper_clean):
    a = account_on(paper_clean[0], owner=alice, name="a")
    b = account_on(paper_clean[1], owner=alice, name="b")
    client.force_login(alice)
    edit = {"name": "b", "broker": "", "host_url": a.host_url, "ws_url": b.ws_url, "is_active": "on"}
    r = client.post(f"/accounts/{b.pk}/edit/", edit | {"api_key": paper_clean[0].api_key})
    assert "This broker account is already added here as “a”" in r.content.decode()
    b.refresh_from_db()
    assert b.host_url == paper_clean[1].host
    with pytest.raises(services.DuplicateAccount):
        services.account_update(account=b, host_url=a.host_url, api_key=paper_clean[0].api_key)
    # Its own key again, or a rename, is not a collision with itself.
    services.account_update(account=a, api_key=paper_clean[0].api_key, name="a2")
    a.refresh_from_db()
    assert a.name == "a2"


@pytest.mark.django_db
def test_a_second_key_on_the_same_openalgo_is_warned_about_not_refused(client, alice, paper_clean):
    """OpenAlgo is one broker account per server, and ping exposes no broker user id: two keys on
    one server are almost surely the same broker account (a regenerated key, say)."""
    sim = paper_clean[0]
    TradingAccountFactory(owner=alice, name="old-key", host_url=sim.host, ws_url=sim.ws_url, api_key="o" * 64)
    client.force_login(alice)
    r = client.post("/accounts/add/", form(sim, name="new-key"), follow=True)
    body = r.content.decode()
    assert TradingAccount.objects.filter(owner=alice, name="new-key").exists()
    assert "new-key uses the same OpenAlgo server as “old-key” with another key" in body
    listing = client.get("/accounts/").content.decode()
    assert "data-same-server" in listing


@pytest.mark.django_db
def test_the_migration_fills_fingerprints_and_halts_a_duplicate_made_before_it(alice, charlie, paper_clean):
    sim = paper_clean[0]
    first = account_on(sim, owner=alice, name="first")
    later = TradingAccountFactory(owner=charlie, name="later", host_url="http://127.0.0.1:9", api_key="z" * 64)
    # As rows from before the fingerprint: none stored, the second one on the same host and key.
    TradingAccount.objects.filter(pk=later.pk).update(
        host_url=sim.host + "/", api_key_encrypted=crypto.encrypt(sim.api_key)
    )
    TradingAccount.objects.update(key_fingerprint=None)
    migration = importlib.import_module("accounts.migrations.0006_one_broker_account_once")
    migration.fill_fingerprints(global_apps, None)
    first.refresh_from_db()
    later.refresh_from_db()
    assert first.key_fingerprint == crypto.account_fingerprint(sim.host, sim.api_key)
    assert later.key_fingerprint is None
    assert later.trading_state == TradingAccount.TradingState.HALTED
    assert "same broker account as another account" in later.halt_reason


@pytest.mark.django_db(transaction=True)
def test_the_add_page_shows_the_refusal_in_a_browser(live_server, alice, paper_clean):
    sim = paper_clean[0]
    in_thread(lambda: account_on(sim, owner=alice, name="paper-one"))
    with chromium(live_server) as b:
        page = b.page(alice)
        page.goto(f"{live_server.url}/accounts/add/")
        page.fill("#id_name", "paper-one-again")
        page.fill("#id_host_url", sim.host + "/")
        page.fill("#id_ws_url", sim.ws_url)
        page.fill("#id_api_key", sim.api_key)
        page.click("form[data-account-form] button[type=submit]")
        page.wait_for_load_state()
        page.screenshot(path="/tmp/hform-duplicate-refused.png", full_page=True)
        page.wait_for_selector("text=already added here as “paper-one”")
        assert not page.locator("input[name=save_anyway]").count()  # a duplicate is not saved "anyway"
        page.screenshot(path="/tmp/hform-duplicate-refused.png", full_page=True)
        assert not b.errors
    assert in_thread(lambda: TradingAccount.objects.filter(owner=alice).count()) == 1


@pytest.mark.django_db
def test_fingerprints_are_recomputed_after_the_secret_key_changes(settings, alice, paper_clean):
    sim = paper_clean[0]
    first = account_on(sim, owner=alice, name="first")
    settings.SECRET_KEY = "a-new-secret-key-for-this-installation-" * 2
    assert services.account_fingerprint_for(host_url=sim.host, api_key=sim.api_key) != first.key_fingerprint
    call_command("account_fingerprints", stdout=io.StringIO())
    with pytest.raises(services.DuplicateAccount):
        account_on(sim, owner=alice, name="again")
