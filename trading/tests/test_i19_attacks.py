"""Attacks on issue 19's order-touching changes (exits on reducing/halted accounts, Retry, group
modify-all / cancel-all, confirmations, close everything tracked, one broker account once, the
order form's checks, audit rows): interleavings, faults and inputs that try to break I1–I8 and
S1–S9 — above all a duplicate order or a wrong exit. Each attack that broke main has its fix; each
that held stays as a test that shows it holds.

Real parts: PostgreSQL, Redis and brokersim; the workers' work is run here, in order, by calling
the same services the tasks call.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.utils import timezone

from accounts.choices import TradingState
from accounts.tests.factories import account_on
from trading import selectors, services
from trading.models import Order, OrderBatch, Position
from trading.services import Leg

pytestmark = pytest.mark.django_db
Status = Order.Status


@pytest.fixture(autouse=True)
def _confirm_at_once(settings):
    settings.ORDER_STATUS_CONFIRM_SECONDS = 0


@pytest.fixture
def profile(paper_clean):
    used = []

    def on(name: str, index: int = 0):
        sim = paper_clean[index]
        sim.sim("POST", "profile", {"profile": name})
        used.append(sim)
        return sim

    yield on
    for sim in used:
        sim.sim("POST", "reset", {"market": True})


def later(seconds: float) -> dt.datetime:
    return timezone.now() + dt.timedelta(seconds=seconds)


def ltp(sim, symbol="SBIN") -> Decimal:
    return Decimal(str(sim.ok("quotes", symbol=symbol, exchange="NSE")["data"]["ltp"]))


def broker_qty(sim, symbol="SBIN", product="MIS") -> int:
    return int(sim.ok("openposition", strategy="t", symbol=symbol, exchange="NSE", product=product)["quantity"])


def settle(account, rounds: int = 3) -> None:
    for _ in range(rounds):
        services.orders_send_account(account_id=account.pk)
        for pk in Order.objects.filter(account=account, status__in=selectors.LIVE_STATUSES).values_list(
            "pk", flat=True
        ):
            services.order_refresh(order_id=pk)


def long_sbin(alice, sim, account, qty=10) -> Position:
    services.orders_create(user=alice, accounts=[account], legs=[Leg("SBIN", "NSE", "BUY", qty)])
    settle(account)
    pos = Position.objects.get(account=account, symbol="SBIN")
    assert pos.quantity == qty == broker_qty(sim)
    return pos


def live_at_broker(sim, action: str, symbol="SBIN") -> int:
    """What the broker still has working on `action` for `symbol` (open, or pending)."""
    rows = sim.ok("orderbook")["data"]["orders"]
    return sum(
        int(float(r["quantity"])) - int(float(r.get("filled_quantity") or 0))
        for r in rows
        if r["symbol"] == symbol
        and r["action"] == action
        and r["order_status"] in ("open", "pending", "trigger pending")
    )


def retry(client, batch, account):
    url = f"/trading/orders/{batch.pk}/retry/{account.pk}/"
    return client.post(url, {"confirmed": "1"})


# ---------------------------------------------------------------- R1. Retry of an exit whose fate is unknown
def test_r1_retry_of_an_exit_given_up_while_it_may_rest_at_the_broker_is_refused(client, alice, paper_clean):
    """Broke on main: a limit exit on a reducing account (issue 19's partial exits) is placed but
    its reply is lost, and the orderbook stays unreadable until the exit is handed to a human
    ("needs attention": it may have been placed). Its summary offered Retry, and the retry's exit
    went out in full next to the resting one: the reduce-only gate counts only accepted/open
    orders in flight, never one given up. Two sells of 10 rested against a long of 10: a flip."""
    sim = paper_clean[0]
    account = account_on(sim, owner=alice)
    long_sbin(alice, sim, account)
    services.account_trading_state_set(user=alice, account_id=account.pk, state=TradingState.REDUCING)
    account.refresh_from_db()
    price = (ltp(sim) * Decimal("1.05")).quantize(Decimal("0.05"))
    sim.sim("POST", "fault", {"endpoint": "placeorder", "kind": "drop_after_execute", "count": 1})
    batch = services.orders_create(
        user=alice, accounts=[account], legs=[Leg("SBIN", "NSE", "SELL", 10, "LIMIT", "MIS", price)]
    )
    exit_order = batch.orders.get()
    assert exit_order.reduce_only
    services.orders_send_account(account_id=account.pk)
    exit_order.refresh_from_db()
    assert exit_order.status == Status.UNKNOWN
    assert live_at_broker(sim, "SELL") == 10  # placed all the same: it rests at the broker
    sim.sim("POST", "fault", {"endpoint": "orderbook", "kind": "status", "value": 503})
    services.order_reconcile(order_id=exit_order.pk, now=later(600))
    exit_order.refresh_from_db()
    assert exit_order.status == Status.ATTENTION, exit_order.last_error
    client.force_login(alice)
    r = retry(client, batch, account)
    assert r.status_code == 302
    settle(account)
    sim.sim("DELETE", "fault")
    assert live_at_broker(sim, "SELL") <= broker_qty(sim) == 10  # main: 20 working against 10 held
    assert not OrderBatch.objects.filter(client_token__startswith="retry:").exists()


# ---------------------------------------------------------------- R2. Retry of an entry never proven dead
def rejected_outside_order(sim) -> None:
    """A genuinely rejected order, placed at the broker by hand: the row before ours (Kite carries
    its status over to a live order behind it)."""
    sim.sim("POST", "fault", {"endpoint": "placeorder", "kind": "reject", "count": 1})
    body = {"pricetype": "MARKET", "product": "MIS", "quantity": "1"}
    sim.ok("placeorder", strategy="manual", symbol="INFY", exchange="NSE", action="BUY", **body)


def test_r2_retry_of_an_entry_rejected_without_proof_is_refused(client, alice, profile):
    """Broke on main: on Zerodha a live entry behind a rejected row reads "rejected", and the
    cancel that would prove it dead fails (OpenAlgo answers 503). After the exit-retry window the
    entry is taken as rejected, "not proven" — and the summary offered Retry, which placed the
    entry a second time while the first was still live: both filled, 4 bought for an order of 2."""
    sim = profile("zerodha")
    account = account_on(sim, owner=alice)
    rejected_outside_order(sim)
    sim.sim("POST", "fault", {"endpoint": "placeorder", "kind": "pending_reads", "value": 6, "count": 1})
    batch = services.orders_create(user=alice, accounts=[account], legs=[Leg("SBIN", "NSE", "BUY", 2)])
    services.orders_send_account(account_id=account.pk)
    order = batch.orders.get()
    sim.sim("POST", "fault", {"endpoint": "cancelorder", "kind": "status", "value": 503})
    for s in (1, 5, 200):
        services.order_refresh(order_id=order.pk, now=later(s))
    order.refresh_from_db()
    assert order.status == Status.REJECTED and "not proven" in order.last_error, (order.status, order.last_error)
    sim.sim("DELETE", "fault")
    client.force_login(alice)
    retry(client, batch, account)
    settle(account)
    for _ in range(10):
        sim.ok("orderbook")  # the transient state ends: the first entry reaches the exchange
    sim.sim("POST", "price", {"symbol": "SBIN", "exchange": "NSE", "ltp": float(ltp(sim))})
    assert broker_qty(sim) == 2  # main: 4, the entry placed twice


def test_r1b_an_exit_given_up_after_its_attempts_were_proven_absent_is_still_retried(
    client, alice, paper_clean, settings
):
    """The fix must keep Retry where it is safe: the exit's one attempt answered 504 (not placed)
    and three orderbook reads past the window proved it absent, so it needs attention — Retry is
    offered, and closes the position once."""
    settings.EXIT_MAX_ATTEMPTS = 1
    sim = paper_clean[0]
    account = account_on(sim, owner=alice)
    pos = long_sbin(alice, sim, account)
    sim.sim("POST", "fault", {"endpoint": "placeorder", "kind": "status", "value": 504, "count": 1})
    batch = services.position_close(user=alice, position_id=pos.pk)
    exit_order = batch.orders.get()
    services.orders_send_account(account_id=account.pk)
    for s in (70, 100, 130, 160):
        services.order_reconcile(order_id=exit_order.pk, now=later(s))
    exit_order.refresh_from_db()
    assert exit_order.status == Status.ATTENTION, exit_order.last_error
    client.force_login(alice)
    assert f"/retry/{account.pk}/" in client.get(f"/trading/orders/{batch.pk}/").content.decode()
    r = retry(client, batch, account)
    assert r.status_code == 302 and OrderBatch.objects.filter(client_token__startswith="retry:").count() == 1
    settle(account)
    assert broker_qty(sim) == 0
    assert len([r for r in sim.ledger() if r["action"] == "SELL"]) == 1  # the 504 executed nothing


# ---------------------------------------------------------------- G1. modify-all's one quantity on many lot sizes
def test_g1_modify_all_one_quantity_over_accounts_counting_differently_is_refused(client, alice, paper_clean):
    """Broke on main: a mirrored CRUDEOIL limit BUY of 2 lots is 2 contracts on Zerodha (lot 1)
    and 200 units elsewhere (lot 100); orders_create refuses one number in units for both, but
    modify-all's optional quantity set every order to it. 400 ("4 lots" in units) reached Zerodha
    as 400 contracts: 200 times the order."""
    from .test_lots import mcx_crude_future

    kite_sim, units_sim = paper_clean[0], paper_clean[1]
    crude = mcx_crude_future(units_sim)
    kite_sim.sim("POST", "profile", {"profile": "zerodha"})
    try:
        kite, other = account_on(kite_sim, owner=alice), account_on(units_sim, owner=alice)
        quote = Decimal(str(units_sim.ok("quotes", symbol=crude, exchange="MCX")["data"]["ltp"]))
        price = (quote * Decimal("0.9")).quantize(Decimal("1"))
        batch = services.orders_create(
            user=alice,
            accounts=[kite, other],
            legs=[Leg(crude, "MCX", "BUY", pricetype="LIMIT", product="NRML", price=price, lots=2)],
        )
        for a in (kite, other):
            services.orders_send_account(account_id=a.pk)
        assert sorted(batch.orders.values_list("quantity", "status")) == [(2, "accepted"), (200, "accepted")]
        client.force_login(alice)
        r = client.post(
            f"/trading/orders/{batch.pk}/modify-all/",
            {"pricetype": "LIMIT", "price": str(price), "quantity": "400"},
        )
        assert r.status_code == 200 and "quantities differ" in r.content.decode()
        assert batch.orders.get(account=kite).quantity == 2  # main: 400 contracts
        assert [int(r["quantity"]) for r in kite_sim.ledger() if r["symbol"] == crude] == [2]  # main: [400]
        # The price alone still changes on every account.
        r = client.post(f"/trading/orders/{batch.pk}/modify-all/", {"pricetype": "LIMIT", "price": str(price - 1)})
        assert r.status_code == 302
        assert set(batch.orders.values_list("price", flat=True)) == {price - 1}
    finally:
        kite_sim.sim("POST", "reset")


# ---------------------------------------------------------------- V. inputs: never a 500, never another's account
@pytest.mark.parametrize("ids", [["²"], ["9" * 30], ["1", "٣"], ["-1"], [""]])
def test_v1_the_symbol_check_takes_any_account_ids_without_a_500(client, alice, paper_clean, ids):
    """Broke on main: "²".isdigit() is True but int("²") raises (500), and a 30-digit id
    overflowed the database's integer (500 on SQLite)."""
    account_on(paper_clean[0], owner=alice)
    client.force_login(alice)
    r = client.get("/trading/orders/symbol-check/", {"symbol": "SBIN", "exchange": "NSE", "accounts": ids})
    assert r.status_code == 200, r.content[:200]


def test_v2_the_symbol_check_never_asks_another_users_broker(client, alice, paper_clean, django_user_model):
    """Held: bob's account id in alice's query is not one of hers; nothing reaches bob's broker
    and nothing of it is answered."""
    bob = django_user_model.objects.create_user("bob", password="x" * 16)
    account_on(paper_clean[0], owner=alice)
    bobs = account_on(paper_clean[1], owner=bob, name="bob-01")
    client.force_login(alice)
    # A tripwire on bob's broker: any request to it uses the fault up.
    for endpoint in ("symbol", "quotes"):
        paper_clean[1].sim("POST", "fault", {"endpoint": endpoint, "kind": "latency", "value": 1, "count": 1})
    r = client.get("/trading/orders/symbol-check/", {"symbol": "SBIN", "exchange": "NSE", "accounts": [bobs.pk]})
    d = r.json()
    assert d["ok"] is None and "bob" not in r.content.decode()
    assert len(paper_clean[1].sim("GET", "fault")["faults"]) == 2  # neither used: bob's broker never asked
    paper_clean[1].sim("DELETE", "fault")


@pytest.mark.parametrize("search", ["M-" + "9" * 30, "m-99999999999999999999", "M-0"])
def test_v3_the_books_group_search_takes_any_number_without_a_500(client, alice, paper_clean, search):
    """Broke on main (SQLite): "M-<30 digits>" in the orders tab's search overflowed (500)."""
    account_on(paper_clean[0], owner=alice)
    client.force_login(alice)
    r = client.get("/trading/books/", {"tab": "orders", "symbol": search})
    assert r.status_code == 200
    assert client.get("/audit/", {"group": search, "account": "9" * 30}).status_code == 200


# ---------------------------------------------------------------- C. confirmations and group actions
@pytest.mark.parametrize("nxt", ["/\\\\evil.example/", "/\\evil.example/", "//evil.example/", "https://evil.example/"])
def test_c1_the_confirmations_back_link_and_the_redirect_after_stay_on_this_site(client, alice, paper_clean, nxt):
    """Broke on main: `next` of "/\\\\evil.example/" passed the "starts with / but not //" test;
    browsers read a backslash as a slash, so the confirmation's Back link and the redirect after
    a cancel led to another site."""
    account = account_on(paper_clean[0], owner=alice)
    client.force_login(alice)
    page = client.post(f"/trading/accounts/{account.pk}/close/", {"next": nxt}).content.decode()
    assert "evil.example" not in page.split("data-confirm-cancel")[0].rsplit("<a", 1)[-1]
    r = client.post(f"/trading/accounts/{account.pk}/cancel-all/", {"next": nxt, "confirmed": "1"})
    assert r.status_code == 302 and "evil.example" not in r.url


def test_c2_another_users_group_cannot_be_cancelled_modified_or_retried(client, alice, paper_clean, django_user_model):
    """Held: bob posting cancel-all, modify-all or Retry on alice's mirrored order gets a 404 and
    reaches none of her orders."""
    account = account_on(paper_clean[0], owner=alice)
    price = (ltp(paper_clean[0]) * Decimal("0.95")).quantize(Decimal("0.05"))
    batch = services.orders_create(
        user=alice, accounts=[account], legs=[Leg("SBIN", "NSE", "BUY", 1, "LIMIT", "MIS", price)]
    )
    services.orders_send_account(account_id=account.pk)
    bob = django_user_model.objects.create_user("bob", password="x" * 16)
    account_on(paper_clean[1], owner=bob, name="bob-01")
    client.force_login(bob)
    base = f"/trading/orders/{batch.pk}"
    assert client.post(f"{base}/cancel-all/", {"confirmed": "1"}).status_code == 404
    assert client.post(f"{base}/modify-all/", {"pricetype": "LIMIT", "price": "1"}).status_code == 404
    assert client.post(f"{base}/retry/{account.pk}/", {"confirmed": "1"}).status_code == 404
    assert client.get(base + "/").status_code == 404
    order = batch.orders.get()
    assert order.status == Status.ACCEPTED and order.price == price


# ---------------------------------------------------------------- W. exits on reducing/halted accounts
def halted_long(alice, sim, qty=10, product="MIS"):
    account = account_on(sim, owner=alice)
    services.orders_create(user=alice, accounts=[account], legs=[Leg("SBIN", "NSE", "BUY", qty, product=product)])
    settle(account)
    services.account_trading_state_set(user=alice, account_id=account.pk, state=TradingState.HALTED)
    account.refresh_from_db()
    return account


def test_w1_a_sell_in_another_product_is_an_entry_on_a_halted_account(alice, paper_clean):
    """Held: 10 SBIN held in NRML; a SELL in MIS would open a short there, and is refused."""
    account = halted_long(alice, paper_clean[0], product="NRML")
    with pytest.raises(services.OrderRefused, match="only exits are allowed"):
        services.orders_create(user=alice, accounts=[account], legs=[Leg("SBIN", "NSE", "SELL", 5, product="MIS")])


def test_w2_ours_long_the_broker_short_a_sell_is_never_sent(alice, paper_clean, settings):
    """Held: our fills say long 10, the broker (a sell of 20 placed outside AlgoMirror) is short
    10. A SELL 5 on the halted account is written as an exit (ours is long), but the reduce-only
    gate sends nothing: it would add to the broker's short."""
    settings.EXIT_BOOKS_AGREE_SECONDS = 0
    sim = paper_clean[0]
    account = halted_long(alice, sim)
    sim.ok(
        "placeorder",
        strategy="manual",
        symbol="SBIN",
        exchange="NSE",
        action="SELL",
        quantity="20",
        pricetype="MARKET",
        product="MIS",
    )
    assert broker_qty(sim) == -10
    batch = services.orders_create(user=alice, accounts=[account], legs=[Leg("SBIN", "NSE", "SELL", 5)])
    settle(account)
    order = batch.orders.get()
    assert order.reduce_only and order.status == Status.REJECTED and "nothing left to close" in order.last_error
    assert broker_qty(sim) == -10


def test_w3_a_partial_exit_with_one_in_flight_never_sums_beyond_the_position(alice, paper_clean):
    """Held: long 10, a limit SELL 6 resting (an exit), then a market SELL 6 on the halted
    account: the second is trimmed to the 4 not already being sold."""
    sim = paper_clean[0]
    account = halted_long(alice, sim)
    price = (ltp(sim) * Decimal("1.05")).quantize(Decimal("0.05"))
    services.orders_create(user=alice, accounts=[account], legs=[Leg("SBIN", "NSE", "SELL", 6, "LIMIT", "MIS", price)])
    settle(account)
    second = services.orders_create(user=alice, accounts=[account], legs=[Leg("SBIN", "NSE", "SELL", 6)])
    settle(account)
    assert second.orders.get().quantity == 4 and broker_qty(sim) == 6
    assert live_at_broker(sim, "SELL") == 6


def test_c3_cancel_all_never_says_nothing_is_working_while_an_order_is_unknown(client, alice, paper_clean):
    """Broke on main: a limit BUY placed at the broker whose reply was lost is "unknown" (it may be
    live); cancel-all skipped it and said "nothing is working any more, nothing to cancel"."""
    sim = paper_clean[0]
    account = account_on(sim, owner=alice)
    price = (ltp(sim) * Decimal("0.95")).quantize(Decimal("0.05"))
    sim.sim("POST", "fault", {"endpoint": "placeorder", "kind": "drop_after_execute", "count": 1})
    batch = services.orders_create(
        user=alice, accounts=[account], legs=[Leg("SBIN", "NSE", "BUY", 1, "LIMIT", "MIS", price)]
    )
    services.orders_send_account(account_id=account.pk)
    assert batch.orders.get().status == Status.UNKNOWN
    client.force_login(alice)
    r = client.post(f"/trading/orders/{batch.pk}/cancel-all/", {"confirmed": "1"}, follow=True)
    shown = r.content.decode()
    assert "nothing is working any more" not in shown
    assert "outcome unknown" in shown
