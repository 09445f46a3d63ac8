"""The order form checks once, before fan-out (issue 19, point 8): symbols upper-cased; the symbol
and exchange asked of one broker's /symbol (lot and tick size shown); a limit or trigger price far
from the last price needs an explicit "place anyway"."""

from __future__ import annotations

from decimal import Decimal

import pytest

from accounts.tests.factories import account_on
from trading.models import Order
from trading.services.validate import price_band_warnings

from .test_books_live import signed_in_page

pytestmark = pytest.mark.django_db

ORDER = {"exchange": "NSE", "action": "BUY", "quantity": 1, "pricetype": "MARKET", "product": "MIS"}


@pytest.fixture
def two(alice, paper_clean):
    return [account_on(s, owner=alice) for s in paper_clean[:2]]


def post(client, two, **over):
    """The order form posted as confirmed: the checks here come before the confirmation."""
    return client.post("/trading/orders/new/", ORDER | {"accounts": [a.pk for a in two], "confirmed": "1"} | over)


def sent(paper_clean) -> int:
    return sum(len(s.ledger()) for s in paper_clean)


def ltp(sim, symbol="SBIN", exchange="NSE") -> Decimal:
    return Decimal(str(sim.ok("quotes", symbol=symbol, exchange=exchange)["data"]["ltp"]))


def test_a_lowercase_symbol_is_upper_cased_not_refused(client, alice, two):
    client.force_login(alice)
    r = post(client, two, symbol=" sbin ")
    assert r.status_code == 302, r.content.decode()[:2000]
    assert set(Order.objects.values_list("symbol", flat=True)) == {"SBIN"}


def test_an_option_on_the_cash_exchange_is_refused_before_anything_is_sent(client, alice, two, paper_clean):
    client.force_login(alice)
    option = paper_clean[0].atm_option("CE", "OTM2")
    r = post(client, two, symbol=option, exchange="NSE", quantity=65, product="NRML")
    body = r.content.decode()
    assert r.status_code == 200
    assert f"{option} is not on NSE, it trades on NFO: choose NFO as the exchange." in body
    assert not Order.objects.exists() and sent(paper_clean) == 0


def test_a_nonexistent_symbol_is_refused_before_anything_is_sent(client, alice, two, paper_clean):
    client.force_login(alice)
    r = post(client, two, symbol="NOSUCHCO")
    body = r.content.decode()
    assert "NOSUCHCO was not found on NSE" in body and "Nothing was sent." in body
    assert not Order.objects.exists() and sent(paper_clean) == 0


def test_a_limit_price_far_from_the_last_price_asks_before_placing(client, alice, two, paper_clean):
    client.force_login(alice)
    far = post(client, two, symbol="SBIN", pricetype="LIMIT", price="99999")
    body = far.content.decode()
    assert far.status_code == 200
    assert "The limit price ₹99,999.00 is" in body and "above the last price" in body
    assert 'name="place_anyway"' in body
    assert not Order.objects.exists() and sent(paper_clean) == 0
    anyway = post(client, two, symbol="SBIN", pricetype="LIMIT", price="99999", place_anyway="on")
    assert anyway.status_code == 302
    assert Order.objects.count() == 2


def test_a_limit_price_near_the_last_price_needs_no_second_look(client, alice, two, paper_clean):
    client.force_login(alice)
    near = (ltp(paper_clean[0]) * Decimal("0.98")).quantize(Decimal("0.05"))
    r = post(client, two, symbol="SBIN", pricetype="LIMIT", price=str(near))
    assert r.status_code == 302, r.content.decode()[:3000]


@pytest.mark.parametrize(
    ("pricetype", "price", "trigger", "warned"),
    [
        ("MARKET", None, None, []),
        ("LIMIT", "100", None, []),
        ("LIMIT", "120", None, []),
        ("LIMIT", "120.01", None, ["limit price"]),
        ("LIMIT", "79.99", None, ["limit price"]),
        ("SL", "100", "130", ["trigger price"]),
        ("SL-M", None, "50", ["trigger price"]),
        ("SL", "999", "999", ["limit price", "trigger price"]),
    ],
)
def test_the_price_band_table(settings, pricetype, price, trigger, warned):
    settings.ORDER_PRICE_BAND_PCT = 20
    out = price_band_warnings(
        pricetype=pricetype,
        price=Decimal(price) if price else None,
        trigger_price=Decimal(trigger) if trigger else None,
        ltp=Decimal("100"),
    )
    assert [w.split(" ₹")[0].removeprefix("The ") for w in out] == warned
    assert price_band_warnings(pricetype="LIMIT", price=Decimal("1"), trigger_price=None, ltp=None) == []


def test_the_symbol_check_endpoint_gives_lot_and_tick(client, alice, two, paper_clean):
    client.force_login(alice)
    option = paper_clean[0].atm_option("CE", "OTM2")
    d = client.get("/trading/orders/symbol-check/", {"symbol": option.lower(), "exchange": "NFO"}).json()
    assert d["ok"] is True and d["symbol"] == option and d["lotsize"] > 1 and Decimal(d["tick_size"]) > 0
    wrong = client.get("/trading/orders/symbol-check/", {"symbol": option, "exchange": "NSE"}).json()
    assert wrong["ok"] is False and "trades on NFO" in wrong["message"]


@pytest.mark.django_db(transaction=True)
def test_the_order_form_shows_the_check_and_the_price_question_in_a_browser(live_server, client, alice, paper_clean):
    from accounts.tests.browser import in_thread

    accounts = in_thread(lambda: [account_on(s, owner=alice) for s in paper_clean[:2]])
    option = paper_clean[0].atm_option("CE", "OTM2")
    with signed_in_page(live_server, client, alice, height=1100) as (page, errors):
        page.goto(f"{live_server.url}/trading/orders/new/")
        page.check(f"input[name=accounts][value='{accounts[0].pk}']")
        page.fill("#id_symbol", option.lower())
        assert page.input_value("#id_symbol") == option
        page.select_option("#id_exchange", "NSE")
        page.wait_for_selector("[data-symbol-check]:has-text('trades on NFO')")
        page.screenshot(path="/tmp/hform-symbol-wrong-exchange.png", full_page=True)
        page.select_option("#id_exchange", "NFO")
        page.wait_for_selector("[data-symbol-check]:has-text('lot size')")
        page.screenshot(path="/tmp/hform-symbol-lot-tick.png", full_page=True)
        page.fill("#id_symbol", "sbin")
        page.select_option("#id_exchange", "NSE")
        page.wait_for_selector("[data-symbol-check]:has-text('SBIN on NSE')")
        page.select_option("#id_pricetype", "LIMIT")
        page.fill("#id_price", "99999")
        page.fill("#id_quantity", "1")
        page.click("form.card button[type=submit]")
        page.wait_for_selector("[data-price-warning]")
        page.screenshot(path="/tmp/hform-price-band.png", full_page=True)
        assert in_thread(lambda: Order.objects.count()) == 0
        page.check("input[name=place_anyway]")
        page.click("form.card button[type=submit]")
        page.click("dialog[data-confirm-dialog] [data-confirm-ok]")  # the confirmation comes last
        page.wait_for_url("**/trading/orders/*/")
        assert not errors
    assert in_thread(lambda: Order.objects.count()) == 1
