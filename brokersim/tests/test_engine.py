import datetime as dt

import pytest

from brokersim import instruments as ins
from brokersim.engine import Account, OrderError, Position, apply_fill
from brokersim.faults import MAX_DELAY_S
from brokersim.market import Market

START = dt.datetime(2026, 11, 20, 5, 0, tzinfo=dt.UTC)  # 10:30 IST, Friday


@pytest.mark.parametrize(
    ("fills", "qty", "avg", "realized"),
    [
        # buy 10 @100, sell 4 @110 → +40 booked, 6 left at 100
        ([(10, 100.0), (-4, 110.0)], 6, 100.0, 40.0),
        # buy 10 @100, buy 10 @110 → 20 at 105
        ([(10, 100.0), (10, 110.0)], 20, 105.0, 0.0),
        # long 6 @100, sell 10 @90 → −60 booked, reversed to short 4 at 90
        ([(6, 100.0), (-10, 90.0)], -4, 90.0, -60.0),
        # short 65 @120, buy back 65 @80 → +2600, flat
        ([(-65, 120.0), (65, 80.0)], 0, 0.0, 2600.0),
        # short 130 @50, cover 65 @60 → −650, 65 short still at 50
        ([(-130, 50.0), (65, 60.0)], -65, 50.0, -650.0),
    ],
)
def test_apply_fill_books_realised_pnl(fills, qty, avg, realized):
    pos = Position("X", "NFO", "NRML")
    for q, p in fills:
        apply_fill(pos, q, p)
    assert (pos.quantity, pos.average_price, pos.realized_pnl) == (qty, pytest.approx(avg), pytest.approx(realized))


@pytest.fixture
def market():
    m = Market(seed=5, start=START, history_days=3)
    m.paused = True
    return m


@pytest.fixture
def account(market):
    return Account(index=1, market=market, capital=1_000_000.0)


def option(market, ot="CE", steps=0):
    u = ins.UNDERLYINGS["NIFTY"]
    exp = ins.option_expiries(u, market.today)[0]
    strikes = ins.listed_strikes(u)
    atm = min(strikes, key=lambda k: abs(k - market.spots["NIFTY"]))
    return ins.lookup(ins.option_symbol("NIFTY", exp, atm + steps * 50, ot), "NFO", market.today)


def test_market_buy_fills_at_ask_and_sell_at_bid(account, market):
    opt = option(market)
    q = market.quote(opt)
    buy = account.place(strategy="t", symbol=opt.symbol, exchange="NFO", action="BUY", quantity=65, product="NRML")
    sell = account.place(strategy="t", symbol=opt.symbol, exchange="NFO", action="SELL", quantity=65, product="NRML")
    assert (buy.status, buy.average_price) == ("complete", q.ask)
    assert (sell.status, sell.average_price) == ("complete", q.bid)
    pos = account.positions[(opt.symbol, "NFO", "NRML")]
    assert pos.quantity == 0
    assert pos.realized_pnl == pytest.approx((q.bid - q.ask) * 65)
    assert account.used_margin == 0


def test_resting_limit_fills_when_price_crosses(account, market):
    opt = option(market)
    ltp = market.ltp(opt)
    o = account.place(
        strategy="t",
        symbol=opt.symbol,
        exchange="NFO",
        action="BUY",
        quantity=65,
        pricetype="LIMIT",
        price=round(ltp - 10, 1),
        product="NRML",
    )
    assert o.status == "open" and o.blocked_margin == pytest.approx(65 * round(ltp - 10, 1))
    market.set_ltp(opt, ltp - 12)
    account.on_tick()
    assert (o.status, o.average_price) == ("complete", round(ltp - 10, 1))


def test_marketable_limit_fills_at_ltp(account, market):
    opt = option(market)
    ltp = market.ltp(opt)
    o = account.place(
        strategy="t",
        symbol=opt.symbol,
        exchange="NFO",
        action="BUY",
        quantity=65,
        pricetype="LIMIT",
        price=ltp + 20,
        product="NRML",
    )
    assert (o.status, o.average_price) == ("complete", ltp)


def test_sl_m_waits_as_trigger_pending_then_fills(account, market):
    opt = option(market)
    ltp = market.ltp(opt)
    o = account.place(
        strategy="t",
        symbol=opt.symbol,
        exchange="NFO",
        action="BUY",
        quantity=65,
        pricetype="SL-M",
        trigger_price=ltp + 5,
        product="NRML",
    )
    assert o.status == "trigger pending"
    market.set_ltp(opt, ltp + 6)
    account.on_tick()
    assert (o.status, o.average_price) == ("complete", pytest.approx(ltp + 6))


def test_sl_limit_becomes_open_when_limit_not_reached(account, market):
    opt = option(market)
    ltp = market.ltp(opt)
    o = account.place(
        strategy="t",
        symbol=opt.symbol,
        exchange="NFO",
        action="SELL",
        quantity=65,
        pricetype="SL",
        trigger_price=ltp - 5,
        price=ltp - 6,
        product="NRML",
    )
    market.set_ltp(opt, ltp - 8)  # triggered, but a SELL limit of ltp−6 is above ltp−8
    account.on_tick()
    assert o.status == "open"
    market.set_ltp(opt, ltp - 5.5)
    account.on_tick()
    assert (o.status, o.average_price) == ("complete", pytest.approx(ltp - 6))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"quantity": 60}, "Quantity must be in multiples of lot size 65"),
        ({"quantity": 1950}, "exceeds freeze quantity 1800"),
        ({"product": "CNC"}, "CNC product is not allowed for derivatives"),
        ({"pricetype": "LIMIT"}, "Price is required for LIMIT orders"),
        ({"pricetype": "SL-M"}, "Trigger price is required for SL-M orders"),
        ({"quantity": 1.5}, "Fractional quantity"),
    ],
)
def test_business_rejections(account, market, kwargs, message):
    opt = option(market)
    args = {
        "strategy": "t",
        "symbol": opt.symbol,
        "exchange": "NFO",
        "action": "BUY",
        "quantity": 65,
        "product": "NRML",
    } | kwargs
    with pytest.raises(OrderError, match=message):
        account.place(**args)
    assert account.orders == {}


def test_short_option_blocks_span_like_margin_and_releases_on_exit(account, market):
    opt = option(market, "PE", -4)
    sell = account.place(strategy="t", symbol=opt.symbol, exchange="NFO", action="SELL", quantity=130, product="NRML")
    blocked = account.used_margin
    assert blocked == pytest.approx(130 * (market.spots["NIFTY"] * 0.09 + sell.average_price))
    account.place(strategy="t", symbol=opt.symbol, exchange="NFO", action="BUY", quantity=65, product="NRML")
    assert account.used_margin == pytest.approx(blocked / 2)
    account.place(strategy="t", symbol=opt.symbol, exchange="NFO", action="BUY", quantity=65, product="NRML")
    assert account.used_margin == 0


def test_insufficient_funds(market):
    small = Account(index=2, market=market, capital=50_000.0)
    opt = option(market, "PE", -4)
    with pytest.raises(OrderError, match="Insufficient funds. Required margin"):
        small.place(strategy="t", symbol=opt.symbol, exchange="NFO", action="SELL", quantity=65, product="NRML")


def test_cnc_sell_without_holdings_is_recorded_as_rejected(account):
    with pytest.raises(OrderError) as exc:
        account.place(strategy="t", symbol="SBIN", exchange="NSE", action="SELL", quantity=5, product="CNC")
    assert account.orders[exc.value.orderid].status == "rejected"


def test_partial_fill_fault_leaves_remainder_open(account, market):
    opt = option(market)
    o = account.place(
        strategy="t",
        symbol=opt.symbol,
        exchange="NFO",
        action="BUY",
        quantity=260,
        product="NRML",
        fault={"kind": "partial_fill", "value": 0.5},
    )
    assert (o.status, o.filled_quantity, o.pending_quantity) == ("open", 130, 130)
    assert account.positions[(opt.symbol, "NFO", "NRML")].quantity == 130
    account.cancel(o.orderid)
    assert o.status == "cancelled"


def test_positions_as_of_undo_the_fills_after_that_moment(market):
    now = [1000.0]
    account = Account(index=1, market=market, capital=1_000_000.0, clock=lambda: now[0])
    ce, pe = option(market), option(market, "PE")
    key_ce, key_pe = (ce.symbol, "NFO", "NRML"), (pe.symbol, "NFO", "NRML")

    def buy(inst, qty):
        account.place(strategy="t", symbol=inst.symbol, exchange="NFO", action="BUY", quantity=qty, product="NRML")

    buy(ce, 65)  # t=1000
    now[0] = 1010.0
    buy(ce, 130)
    buy(pe, 65)
    now[0] = 1020.0
    live = account.positions[key_ce]

    def qty(book):
        return {k: p.quantity for k, p in book.items()}

    assert qty(account.positions_as_of(999.0)) == {}
    assert qty(account.positions_as_of(1005.0)) == {key_ce: 65}
    assert qty(account.positions_as_of(1010.0)) == {key_ce: 195, key_pe: 65}
    assert account.positions[key_ce] is live and live.quantity == 195  # the live book is untouched
    # History older than MAX_DELAY_S is dropped as new fills come in.
    now[0] = 1000.0 + MAX_DELAY_S + 5
    buy(pe, 65)
    assert len(account._history) == 3
    account.clear_books()
    assert account.positions_as_of(0.0) == {} and not account._history
