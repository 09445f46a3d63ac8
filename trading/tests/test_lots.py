"""Units (issue 18, point 7): each account's quantity comes from its own broker's lot size. Zerodha
counts MCX in contracts (lot size 1), other brokers in units (CRUDEOIL: 100), so one leg sized in
units for both would differ a hundredfold. A leg may be given in lots; a quantity in units must
be a whole number of lots on every account, and mean the same on each."""

from __future__ import annotations

import pytest

from accounts.tests.factories import account_on
from trading import services
from trading.models import Order
from trading.services import Leg, OrderRefused
from trading.services.create import instrument_info

Status = Order.Status


@pytest.fixture
def two(alice, paper_clean):
    return [(account_on(sim, owner=alice), sim) for sim in paper_clean[:2]]


def lot_of(sim, symbol: str, exchange: str) -> int:
    return int(sim.ok("symbol", symbol=symbol, exchange=exchange)["data"]["lotsize"])


def send(batch) -> list[Order]:
    for a in set(batch.orders.values_list("account_id", flat=True)):
        services.orders_send_account(account_id=a, batch_id=batch.pk)
    return list(batch.orders.order_by("account_id"))


@pytest.mark.parametrize(
    ("leg", "lot", "quantity"),
    [
        (Leg("X", "NFO", "BUY", 130), 65, 130),
        (Leg("X", "NFO", "BUY", lots=2), 65, 130),
        (Leg("X", "MCX", "BUY", lots=2), 1, 2),  # Zerodha: contracts
        (Leg("X", "MCX", "BUY", lots=2), 100, 200),  # units
        (Leg("SBIN", "NSE", "BUY", lots=3), 1, 3),
    ],
)
def test_a_legs_quantity_on_an_account(leg, lot, quantity):
    assert leg.quantity_for(lot) == quantity


@pytest.mark.django_db
@pytest.mark.parametrize(
    "leg",
    [
        Leg("SBIN", "NSE", "BUY"),  # no size
        Leg("SBIN", "NSE", "BUY", 1, lots=1),  # both
        Leg("SBIN", "NSE", "BUY", lots=-1),
        Leg("SBIN", "NSE", "BUY", -1),
    ],
)
def test_a_leg_needs_exactly_one_size(alice, two, leg):
    with pytest.raises(OrderRefused, match="give a positive quantity or a positive number of lots"):
        services.orders_create(user=alice, accounts=[a for a, _ in two], legs=[leg])
    assert not Order.objects.exists()


@pytest.mark.django_db
def test_lots_become_each_accounts_quantity_at_the_broker(alice, two):
    sim = two[0][1]
    ce = sim.atm_option("CE", "OTM2")
    lot = lot_of(sim, ce, "NFO")
    orders = send(
        services.orders_create(
            user=alice, accounts=[a for a, _ in two], legs=[Leg(ce, "NFO", "BUY", lots=2, product="NRML")]
        )
    )
    assert [(o.quantity, o.status) for o in orders] == [(2 * lot, Status.ACCEPTED)] * 2
    for (account, broker), order in zip(two, orders, strict=True):
        (row,) = [r for r in broker.ledger() if r["strategy"] == order.tag]
        assert int(row["quantity"]) == 2 * lot, account.name


@pytest.mark.django_db
def test_units_that_are_not_a_whole_number_of_lots_are_refused_and_nothing_is_written(alice, two):
    sim = two[0][1]
    ce = sim.atm_option("CE", "OTM2")
    lot = lot_of(sim, ce, "NFO")
    with pytest.raises(OrderRefused, match=rf"{lot + 1} is not a whole number of lots on .* \(lot size {lot}\)"):
        services.orders_create(user=alice, accounts=[a for a, _ in two], legs=[Leg(ce, "NFO", "BUY", lot + 1)])
    assert not Order.objects.exists()
    # A whole number of lots in units is fine.
    batch = services.orders_create(user=alice, accounts=[a for a, _ in two], legs=[Leg(ce, "NFO", "BUY", 3 * lot)])
    assert sorted(batch.orders.values_list("quantity", flat=True)) == [3 * lot] * 2


@pytest.mark.django_db
def test_each_account_is_sized_from_its_own_broker_not_the_first_ones(alice, two):
    """The lot size was read from the first account for all of them: an instrument the second
    account's broker cannot size went out sized by the first's."""
    (first, _), (second, second_sim) = two
    ce = two[0][1].atm_option("CE", "OTM2")
    second_sim.sim("POST", "fault", {"endpoint": "symbol", "kind": "status", "value": 500})
    with pytest.raises(OrderRefused, match=rf"{ce} on NFO \({second.name}\)"):
        services.orders_create(user=alice, accounts=[first, second], legs=[Leg(ce, "NFO", "BUY", lots=1)])
    assert not Order.objects.exists()


@pytest.mark.django_db
def test_lot_sizes_are_cached_per_openalgo_server(alice, two):
    """One server's answer never stands in for another's, however recently it was read."""
    (first, sim), (second, second_sim) = two
    ce = sim.atm_option("CE", "OTM2")
    lot = lot_of(sim, ce, "NFO")
    assert instrument_info(first, ce, "NFO")["lotsize"] == lot
    second_sim.sim("POST", "fault", {"endpoint": "symbol", "kind": "status", "value": 500})
    with pytest.raises(OrderRefused, match=second.name):
        instrument_info(second, ce, "NFO")
    sim.sim("POST", "fault", {"endpoint": "symbol", "kind": "status", "value": 500})
    assert instrument_info(first, ce, "NFO")["lotsize"] == lot  # cached: not read again


@pytest.mark.django_db
def test_the_order_form_takes_lots(client, alice, two):
    client.force_login(alice)
    sim = two[0][1]
    ce = sim.atm_option("CE", "OTM2")
    lot = lot_of(sim, ce, "NFO")
    form = {
        "accounts": [a.pk for a, _ in two],
        "symbol": ce,
        "exchange": "NFO",
        "action": "BUY",
        "pricetype": "MARKET",
        "product": "NRML",
    }
    assert "Lots (F&amp;O)" in client.get("/trading/orders/new/").content.decode()
    both = client.post("/trading/orders/new/", {**form, "quantity": lot, "lots": 1}).content.decode()
    assert "Give either a quantity or a number of lots" in both
    odd = client.post("/trading/orders/new/", {**form, "quantity": lot + 1}).content.decode()
    assert "is not a whole number of lots" in odd
    assert not Order.objects.exists()
    review = client.post("/trading/orders/new/", {**form, "lots": 3})
    assert review.status_code == 200 and not Order.objects.exists()  # the confirmation first
    assert review.content.decode().count(f">{3 * lot}<") >= 2  # each account's own quantity shown
    r = client.post("/trading/orders/new/", {**form, "lots": 3, "confirmed": 1})
    assert r.status_code == 302
    assert sorted(Order.objects.values_list("quantity", flat=True)) == [3 * lot] * 2


def mcx_crude_future(sim) -> str | None:
    res = sim.api("search", query="CRUDEOIL", exchange="MCX")
    rows = res.json().get("data") if res.status_code == 200 else None
    futures = [r["symbol"] for r in rows or [] if r.get("instrumenttype", "").startswith("FUT")]
    return futures[0] if futures else None


@pytest.mark.django_db
def test_mcx_the_same_lots_are_one_contract_on_zerodha_and_a_hundred_units_elsewhere(alice, paper_clean):
    """The issue's acceptance test. NEEDS brokersim's MCX instruments and the Zerodha profile's
    contract counting (issue 18 point 1, another branch): skipped until they are there."""
    zerodha_sim, units_sim = paper_clean[0], paper_clean[1]
    crude = mcx_crude_future(units_sim)
    if crude is None:
        pytest.skip("needs brokersim MCX instruments (issue 18 point 1 branch): no CRUDEOIL future on MCX")
    zerodha_sim.sim("POST", "profile", {"profile": "zerodha"})
    try:
        if lot_of(zerodha_sim, crude, "MCX") != 1:
            pytest.skip("needs the zerodha profile's MCX contract counting (lot size 1) in brokersim")
        units_lot = lot_of(units_sim, crude, "MCX")
        assert units_lot == 100
        kite, other = account_on(zerodha_sim, owner=alice), account_on(units_sim, owner=alice)
        # Units would mean a hundredfold difference: refused, lots asked for.
        with pytest.raises(
            OrderRefused, match="the lot size differs between the accounts .* give the quantity in lots"
        ):
            services.orders_create(user=alice, accounts=[kite, other], legs=[Leg(crude, "MCX", "BUY", 100)])
        assert not Order.objects.exists()
        batch = services.orders_create(
            user=alice, accounts=[kite, other], legs=[Leg(crude, "MCX", "BUY", lots=2, product="NRML")]
        )
        send(batch)
        got = {}
        for account, sim in ((kite, zerodha_sim), (other, units_sim)):
            order = batch.orders.get(account=account)
            assert order.status == Status.ACCEPTED, order.last_error
            ledger = [r for r in sim.ledger() if r["symbol"] == crude]
            got[account.name] = (order.quantity, [int(r["quantity"]) for r in ledger])
        assert got == {kite.name: (2, [2]), other.name: (200, [200])}
    finally:
        zerodha_sim.sim("POST", "reset")
