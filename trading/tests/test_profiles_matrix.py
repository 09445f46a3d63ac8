"""Issue 18's acceptance as a matrix: every brokersim broker profile × the order path's
exactly-once and reduce-only checks (0 duplicates, 0 wrong exits, every order's final state
equal to the broker's), and the day's rollover across a simulated midnight, live.

`test_cell[profile-check]` is one cell each, so `pytest -v` on this file prints the matrix. A
cell another file already runs (ELSEWHERE below names it) is not run twice: its id here checks
that the covering test is still there for that profile. The checks:

* exactly_once — entries on two accounts under three of test_orders.FAULT_CASES (one trial
  each): nothing placed twice, every order ends as the broker has it (ledger), positions
  MATCHED. On `dead_token` nothing can be placed: entries are refused up front after one health
  cycle, and those already queued end rejected without any placement. On `semi_auto` nothing is
  placed until approved: each order is queued for approval once, awaits it, and once approved
  at OpenAlgo is adopted from the orderbook, never sent again;
* second_close — a second close of a flat position sends nothing;
* exit_trimmed — an exit larger than the position is trimmed, never flips;
* exit_once — an exit whose reply is lost (placed, we do not know) is sent once and leaves the
  position at exactly 0.
On `dead_token` exits are held (the broker's positions are unknown), never denied, and go once
the broker answers again; on `semi_auto` they are refused up front once the mode is known, one
sent before it was known is queued once and never sent again, and one whose reply was lost
before the mode was known (so queued twice: no read shows the Action Center) goes to a human.
"""

from __future__ import annotations

import datetime as dt
import importlib
from decimal import Decimal

import pytest
import time_machine
from django.utils import timezone

from accounts import services as account_services
from accounts.models import Alert, AuditEvent, TradingAccount
from accounts.tests.factories import account_on
from core.calendar import IST
from trading import services
from trading.models import Order, Position, Reconciliation
from trading.services import Leg, OrderRefused
from trading.services.outcome import AWAITING_APPROVAL
from trading.tests.test_exits_and_books import (
    test_a_second_exit_of_a_closed_position_is_never_sent as second_close_check,
)
from trading.tests.test_exits_and_books import (
    test_an_exit_larger_than_the_position_is_trimmed_never_flips as exit_trimmed_check,
)
from trading.tests.test_orders import FAULT_CASES, assert_exactly_once, run_until_settled

pytestmark = pytest.mark.django_db
Status = Order.Status
LIVE = (Status.ACCEPTED, Status.OPEN)
PROFILES = ["clean", "zerodha", "dhan", "xts", "angel", "dead_token", "semi_auto"]
CHECKS = ["exactly_once", "second_close", "exit_trimmed", "exit_once"]
FAULTS = ["500", "drop_after_execute", "no_orderid"]  # before the broker, after it, success without an id
ENTRIES = [Leg("SBIN", "NSE", "BUY", 4), Leg("INFY", "NSE", "BUY", 2), Leg("TCS", "NSE", "SELL", 2)]

# Cells run elsewhere: (module, test, the profile its parametrize must name, or None).
ELSEWHERE = {
    ("clean", "exactly_once"): ("test_orders", "test_exactly_once_under_faults", None),
    ("zerodha", "exactly_once"): ("test_broker_statuses", "test_exactly_once_on_real_brokers_profiles", "zerodha"),
    ("dhan", "exactly_once"): ("test_broker_statuses", "test_exactly_once_on_real_brokers_profiles", "dhan"),
    ("xts", "exactly_once"): ("test_broker_statuses", "test_exactly_once_on_real_brokers_profiles", "xts"),
    ("clean", "second_close"): ("test_exits_and_books", "test_a_second_exit_of_a_closed_position_is_never_sent", None),
    ("clean", "exit_trimmed"): (
        "test_exits_and_books",
        "test_an_exit_larger_than_the_position_is_trimmed_never_flips",
        None,
    ),
    ("angel", "second_close"): ("test_empty_books", "test_angel_a_second_exit_is_never_sent", None),
    ("angel", "exit_trimmed"): ("test_empty_books", "test_angel_an_exit_is_trimmed_never_flips", None),
}


@pytest.fixture
def quick(settings):
    settings.ORDER_STATUS_CONFIRM_SECONDS = 0.0  # a status that needs a second read gets it at once
    settings.EXIT_BOOKS_AGREE_SECONDS = 0.0
    return settings


@pytest.fixture
def sims(paper_clean):
    """The paper instances; every profile set here is undone after the test."""
    yield paper_clean
    for sim in paper_clean:
        sim.sim("POST", "reset", {"market": True})


def on(sims, profile: str, index: int = 0):
    sims[index].set_profile(profile)
    return sims[index]


def later(seconds: float = 60) -> dt.datetime:
    return timezone.now() + dt.timedelta(seconds=seconds)


def arm(sim, endpoint: str, case: str, count: int = 2) -> None:
    faults, _wait = FAULT_CASES[case]
    for fault in faults:
        sim.sim("POST", "fault", {"endpoint": endpoint, "count": count, **fault})


def place(user, account, *legs: Leg):
    batch = services.orders_create(user=user, accounts=[account], legs=list(legs))
    services.orders_send_account(account_id=account.pk, batch_id=batch.pk)
    for o in batch.orders.filter(status__in=LIVE):
        services.order_refresh(order_id=o.pk)
    return batch


def broker_qty(sim, symbol="SBIN", exchange="NSE", product="MIS") -> int:
    return int(sim.ok("openposition", strategy="t", symbol=symbol, exchange=exchange, product=product)["quantity"])


def ours(sim) -> list[dict]:
    return [r for r in sim.ledger() if str(r.get("strategy", "")).startswith("am")]


def settle(account) -> None:
    """What the workers do once nothing is in flight: unknown orders looked for, live ones read."""
    for _ in range(4):
        for o in Order.objects.filter(account=account, status__in=[Status.UNKNOWN, Status.SENDING]):
            services.order_reconcile(order_id=o.pk, now=later())
        services.orders_send_account(account_id=account.pk)
        for o in Order.objects.filter(account=account, status__in=LIVE):
            services.order_refresh(order_id=o.pk, now=later(5))


def assert_books_agree(account, sim) -> None:
    """Every order of ours ends as the broker's ledger has it; none the broker lacks is live; our
    positions equal its positionbook."""
    settle(account)
    ledger = {r["orderid"]: r for r in sim.ledger()}
    tags = [r["strategy"] for r in ours(sim)]
    assert len(tags) == len(set(tags)), tags  # 0 duplicates
    for o in Order.objects.filter(account=account).exclude(status=Status.SPLIT):
        if o.broker_orderid is None:
            assert o.status in (Status.REJECTED, Status.CANCELLED), (o.symbol, o.status, o.last_error)
            assert o.tag not in tags, o.tag  # the broker has it, we do not
            continue
        row = ledger[o.broker_orderid]
        assert (o.status, o.filled_quantity) == (row["status"], row["filled_quantity"]), (o.symbol, o.broker_status)
        if o.filled_quantity:
            assert o.average_price == Decimal(str(row["average_price"]))
    recon = services.account_books_refresh(account_id=account.pk)
    assert recon.state == Reconciliation.State.MATCHED, (recon.error, recon.differences)


def holding(alice, account, sim, qty: int = 10) -> Position:
    place(alice, account, Leg("SBIN", "NSE", "BUY", qty))
    assert broker_qty(sim) == qty
    return Position.objects.get(account=account, symbol="SBIN")


# ------------------------------------------------------------------ the cells
def exactly_once(alice, sims, profile):
    pairs = []
    for i in range(2):
        sim = on(sims, profile, i)
        pairs.append((account_on(sim, owner=alice), sim))
    for case in FAULTS:
        for account, sim in pairs:
            # A new day at the broker (flat, no orders), and for us (as test_orders' trials do).
            sim.sim("POST", "reset")
            sim.set_profile(profile)
            Order.objects.filter(account=account).delete()
            Position.objects.filter(account=account).delete()
            arm(sim, "placeorder", case)
        batch = services.orders_create(user=alice, accounts=[a for a, _ in pairs], legs=ENTRIES)
        run_until_settled(batch, wait=FAULT_CASES[case][1])
        assert_exactly_once(batch, pairs)
        for account, sim in pairs:
            sim.sim("DELETE", "fault")
            assert_books_agree(account, sim)


def second_close(alice, sims, profile):
    sim = on(sims, profile)
    account = account_on(sim, owner=alice)
    second_close_check(alice, (account, sim))
    assert_books_agree(account, sim)


def exit_trimmed(alice, sims, profile):
    sim = on(sims, profile)
    account = account_on(sim, owner=alice)
    exit_trimmed_check(alice, (account, sim))
    assert_books_agree(account, sim)


def exit_once(alice, sims, profile):
    sim = on(sims, profile)
    account = account_on(sim, owner=alice)
    pos = holding(alice, account, sim)
    arm(sim, "placeorder", "drop_after_execute", count=1)
    close = services.position_close(user=alice, position_id=pos.pk)
    services.orders_send_account(account_id=account.pk, batch_id=close.pk)
    exit_order = close.orders.get()
    assert exit_order.status == Status.UNKNOWN  # placed, and we do not know it
    settle(account)
    exit_order.refresh_from_db()
    assert exit_order.status == Status.COMPLETE, (exit_order.status, exit_order.last_error)
    assert [r["action"] for r in ours(sim)] == ["BUY", "SELL"] and broker_qty(sim) == 0  # sent once, 0 flips
    again = place(alice, account, Leg("SBIN", "NSE", "SELL", 10, reduce_only=True)).orders.get()
    assert again.status == Status.REJECTED and len(ours(sim)) == 2
    assert_books_agree(account, sim)


# dead_token: ping answers, funds `{}`, books `[]`, order routes 403.
def dead_token_exactly_once(alice, sims, profile):
    sim = sims[0]
    account = account_services.account_check(account_id=account_on(sim, owner=alice).pk)
    assert account.status == TradingAccount.Status.CONNECTED
    for case in FAULTS:
        # Queued while the token was good; the token dies before the send (faults on top).
        sim.set_profile("clean")
        batch = services.orders_create(user=alice, accounts=[account], legs=ENTRIES)
        sim.set_profile("dead_token")
        arm(sim, "placeorder", case)
        run_until_settled(batch)
        sim.sim("DELETE", "fault")
        statuses = {(o.status, o.broker_orderid) for o in batch.orders.all()}
        assert statuses == {(Status.REJECTED, None)}, [(o.symbol, o.status, o.last_error) for o in batch.orders.all()]
    assert sim.ledger() == []  # nothing placed, nothing twice
    # One health cycle later the account takes no entries at all: refused up front.
    account = account_services.account_check(account_id=account.pk)
    assert account.status == TradingAccount.Status.BROKER_UNKNOWN
    before = Order.objects.count()
    with pytest.raises(OrderRefused, match="broker session unknown"):
        services.orders_create(user=alice, accounts=[account], legs=ENTRIES)
    assert Order.objects.count() == before and sim.ledger() == []
    sim.set_profile("clean")
    assert_books_agree(account, sim)


def dead_token_second_close(alice, sims, profile):
    sim = sims[0]
    account = account_on(sim, owner=alice)
    pos = holding(alice, account, sim)
    close = services.position_close(user=alice, position_id=pos.pk)
    services.orders_send_account(account_id=account.pk, batch_id=close.pk)
    settle(account)
    assert broker_qty(sim) == 0 and Position.objects.get(pk=pos.pk).quantity == 0
    sim.set_profile("dead_token")
    o = place(alice, account, Leg("SBIN", "NSE", "SELL", 10, reduce_only=True)).orders.get()
    assert o.status == Status.REJECTED and "nothing left to close" in o.last_error
    assert len(ours(sim)) == 2
    sim.set_profile("clean")
    assert_books_agree(account, sim)


def dead_token_exit_held(alice, sims, profile, *, qty: int, fault: str | None):
    """An exit while the token is dead is held (the empty positionbook is unknown, not flat),
    never denied and never sent; once the broker answers again it goes, once."""
    sim = sims[0]
    account = account_on(sim, owner=alice)
    holding(alice, account, sim)
    sim.set_profile("dead_token")
    batch = place(alice, account, Leg("SBIN", "NSE", "SELL", qty, reduce_only=True))
    for _ in range(3):
        services.orders_send_account(account_id=account.pk, batch_id=batch.pk)
    o = batch.orders.get()
    assert (o.status, o.attempts) == (Status.PENDING, 0) and "exit held" in o.last_error, o.last_error
    assert len(ours(sim)) == 1
    sim.set_profile("clean")
    if fault:
        arm(sim, "placeorder", fault, count=1)
    services.orders_send_account(account_id=account.pk, batch_id=batch.pk)
    settle(account)
    o.refresh_from_db()
    assert (o.status, o.quantity) == (Status.COMPLETE, 10), o.last_error
    assert [r["action"] for r in ours(sim)] == ["BUY", "SELL"] and broker_qty(sim) == 0
    assert_books_agree(account, sim)


# semi_auto: placements are queued for approval at OpenAlgo; modify/cancel/close answer 403.
def pending(sim) -> list[int]:
    return sim.sim("GET", "profile")["pending_approvals"]


def approve_all(sim) -> None:
    for n in pending(sim):
        assert sim.sim("POST", "approve", {"pending_order_id": n})["http_status"] == 200


def semi_auto_exactly_once(alice, sims, profile):
    pairs = []
    for sim in sims[:2]:
        account = account_services.account_check(account_id=account_on(sim, owner=alice).pk)
        pairs.append((account, sim))
    for case in FAULTS:
        for account, sim in pairs:
            sim.sim("POST", "reset")
            sim.set_profile("semi_auto")
            Order.objects.filter(account=account).delete()
            Position.objects.filter(account=account).delete()
            arm(sim, "placeorder", case)
        batch = services.orders_create(user=alice, accounts=[a for a, _ in pairs], legs=ENTRIES)
        run_until_settled(batch, wait=FAULT_CASES[case][1])
        for account, sim in pairs:
            sim.sim("DELETE", "fault")
            mine = batch.orders.filter(account=account)
            assert sim.ledger() == []  # nothing placed before approval
            assert not mine.filter(status__in=[Status.ACCEPTED, *LIVE]).exists()
            account.refresh_from_db()
            assert account.is_semi_auto
            # A human approves whatever is queued, as it is queued (the SELL leg is sent only
            # once the BUYs are placed): each order must have been queued once.
            approved = 0
            for _ in range(3):
                approved += len(pending(sim))
                approve_all(sim)
                settle(account)
            assert approved == mine.count(), (case, approved, [(o.symbol, o.status, o.last_error) for o in mine])
            assert_books_agree(account, sim)
            assert len(ours(sim)) == approved


def semi_auto_second_close(alice, sims, profile):
    """Known semi-auto: every exit is refused up front, with one alert, nothing written or sent."""
    sim = sims[0]
    account = account_on(sim, owner=alice)
    pos = holding(alice, account, sim)
    sim.set_profile("semi_auto")
    account_services.account_mark_semi_auto(account=account, evidence="order 1: queued for approval at OpenAlgo")
    before = Order.objects.count()
    for _ in range(2):
        with pytest.raises(OrderRefused, match="semi-auto mode at OpenAlgo"):
            services.position_close(user=alice, position_id=pos.pk)
    assert Order.objects.count() == before and pending(sim) == [] and len(ours(sim)) == 1
    assert Alert.objects.filter(account=account, kind=Alert.Kind.SEMI_AUTO_EXIT_REFUSED).count() == 1
    assert_books_agree(account, sim)


def semi_auto_exit_queued(alice, sims, profile):
    """The mode not known yet (the account placed in auto mode before): the exit is checked
    (trimmed) and sent, OpenAlgo queues it; it awaits approval, is never sent again, and once
    approved closes the position to exactly 0."""
    sim = sims[0]
    account = account_on(sim, owner=alice)
    holding(alice, account, sim)
    sim.set_profile("semi_auto")
    o = place(alice, account, Leg("SBIN", "NSE", "SELL", 15, reduce_only=True)).orders.get()
    assert (o.quantity, o.status, o.broker_status) == (10, Status.UNKNOWN, AWAITING_APPROVAL), o.last_error
    for _ in range(3):
        settle(account)
        services.orders_sweep(now=later(120))
    assert pending(sim) == [1] and len(ours(sim)) == 1  # queued once, nothing placed
    account.refresh_from_db()
    assert account.is_semi_auto
    with pytest.raises(OrderRefused, match="semi-auto mode at OpenAlgo"):  # from now on: refused up front
        place(alice, account, Leg("SBIN", "NSE", "SELL", 10, reduce_only=True))
    approve_all(sim)
    settle(account)
    o.refresh_from_db()
    assert (o.status, o.filled_quantity) == (Status.COMPLETE, 10), (o.status, o.last_error)
    assert broker_qty(sim) == 0 and len(ours(sim)) == 2
    assert_books_agree(account, sim)


def semi_auto_exit_reply_lost(alice, sims, profile):
    """The mode not known yet and the exit's reply lost: absent from the orderbook (it waits in
    the Action Center, which no read shows), it is proven absent and sent again, and only that
    reply reveals the mode — both attempts are queued, which nothing can prevent or withdraw.
    Then it is a human's: the exit needs attention (critical alert, account reducing) and is
    never sent a third time; the one approved is adopted, and the position ends at 0."""
    sim = sims[0]
    account = account_on(sim, owner=alice)
    holding(alice, account, sim)
    sim.set_profile("semi_auto")
    arm(sim, "placeorder", "drop_after_execute", count=1)
    o = place(alice, account, Leg("SBIN", "NSE", "SELL", 10, reduce_only=True)).orders.get()
    assert o.status == Status.UNKNOWN and o.broker_status != AWAITING_APPROVAL
    for _ in range(4):
        settle(account)
        services.orders_sweep(now=later(120))
    o.refresh_from_db()
    assert pending(sim) == [1, 2] and len(ours(sim)) == 1, (pending(sim), o.last_error)
    assert o.status == Status.ATTENTION and "approve one of them at most" in o.last_error, o.last_error
    alert = Alert.objects.get(account=account, kind=Alert.Kind.EXIT_NEEDS_ATTENTION)
    assert alert.level == Alert.Level.CRITICAL and "earlier attempt may be queued" in alert.message
    account.refresh_from_db()
    assert account.trading_state == TradingAccount.TradingState.REDUCING
    assert sim.sim("POST", "approve", {"pending_order_id": 2})["http_status"] == 200  # the human approves one
    services.order_reconcile(order_id=o.pk, now=later())
    settle(account)
    o.refresh_from_db()
    assert (o.status, o.filled_quantity) == (Status.COMPLETE, 10), (o.status, o.last_error)
    assert broker_qty(sim) == 0 and len(ours(sim)) == 2
    assert_books_agree(account, sim)


CELLS = {
    "exactly_once": exactly_once,
    "second_close": second_close,
    "exit_trimmed": exit_trimmed,
    "exit_once": exit_once,
    ("dead_token", "exactly_once"): dead_token_exactly_once,
    ("dead_token", "second_close"): dead_token_second_close,
    ("dead_token", "exit_trimmed"): lambda a, s, p: dead_token_exit_held(a, s, p, qty=15, fault=None),
    ("dead_token", "exit_once"): lambda a, s, p: dead_token_exit_held(a, s, p, qty=10, fault="drop_after_execute"),
    ("semi_auto", "exactly_once"): semi_auto_exactly_once,
    ("semi_auto", "second_close"): semi_auto_second_close,
    ("semi_auto", "exit_trimmed"): semi_auto_exit_queued,
    ("semi_auto", "exit_once"): semi_auto_exit_reply_lost,
}


def assert_covered_elsewhere(module: str, name: str, profile: str | None) -> None:
    test = getattr(importlib.import_module(f"trading.tests.{module}"), name, None)
    assert callable(test), f"{module}::{name} is gone: this cell is no longer covered"
    if profile is not None:
        values = [v for m in getattr(test, "pytestmark", []) if m.name == "parametrize" for v in m.args[1]]
        assert profile in values, f"{module}::{name} no longer runs on {profile}"


@pytest.mark.parametrize("check", CHECKS)
@pytest.mark.parametrize("profile", PROFILES)
def test_cell(request, profile, check):
    if (profile, check) in ELSEWHERE:
        assert_covered_elsewhere(*ELSEWHERE[(profile, check)])
        return
    request.getfixturevalue("quick")
    alice, sims = request.getfixturevalue("alice"), request.getfixturevalue("sims")
    CELLS.get((profile, check), CELLS[check])(alice, sims, profile)


# ------------------------------------------------------------------ the rollover, live
def ist(day: dt.date, hour: int, minute: int) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(hour, minute), tzinfo=IST)


def workers_cycle(accounts) -> None:
    """What the beat runs: the sweep (unknown orders looked for, queued ones sent), the pollers,
    then the books (reconciliation)."""
    services.orders_sweep(now=later())
    for account in accounts:
        services.orders_send_account(account_id=account.pk)
        for seconds in (0, 5):  # a doubtful word is confirmed by a second read a little later
            for o in Order.objects.filter(account=account, status__in=LIVE):
                services.order_refresh(order_id=o.pk, now=later(seconds))
    for account in accounts:
        services.account_books_refresh(account_id=account.pk)


def limit_below(sim, symbol: str) -> Decimal:
    return Decimal(str(round(float(sim.ok("quotes", symbol=symbol, exchange="NSE")["data"]["ltp"]) * 0.97, 1)))


def test_rollover_across_a_simulated_midnight(alice, sims):
    """Accounts on the clean and the Dhan-like profile hold MIS and NRML positions and a resting
    day LIMIT; on each one order's outcome is unknown (Dhan: a MIS market order placed a minute
    before the square-off; clean: a LIMIT whose orderbook cannot be read all afternoon). The
    broker squares off MIS at 15:15, expires the day orders at 15:30 (Dhan says EXPIRED, over
    REST) and clears its books at 03:00: we adopt the square-off (no MISSING flag), end the day
    orders cancelled, and the next morning hold no order open or unknown, have resent nothing,
    and our positions equal the broker's (the NRML one carried)."""
    clean, dhan = sims[0], on(sims, "dhan", 1)
    today = timezone.now().astimezone(IST).date()
    accounts, options = {}, {}
    with time_machine.travel(ist(today, 14, 0), tick=True):
        for name, sim in (("clean", clean), ("dhan", dhan)):
            account = accounts[name] = account_on(sim, owner=alice, name=f"roll-{name}")
            options[name] = sim.atm_option("CE", "OTM2")
            batch = place(
                alice,
                account,
                Leg("SBIN", "NSE", "BUY", 10),
                Leg(options[name], "NFO", "BUY", 65, product="NRML"),
                Leg("INFY", "NSE", "BUY", 3, "LIMIT", price=limit_below(sim, "INFY"), product="CNC"),
            )
            assert batch.orders.get(symbol="INFY").status in LIVE  # resting
        arm(clean, "placeorder", "drop_after_execute", count=1)
        lost = place(alice, accounts["clean"], Leg("TCS", "NSE", "BUY", 1, "LIMIT", price=limit_below(clean, "TCS")))
        lost = lost.orders.get()
        clean.sim("POST", "fault", {"endpoint": "orderbook", "kind": "status", "value": 500, "count": 10_000})
    with time_machine.travel(ist(today, 15, 14), tick=True):
        arm(dhan, "placeorder", "drop_after_execute", count=1)
        late = place(alice, accounts["dhan"], Leg("TCS", "NSE", "BUY", 2)).orders.get()
        assert lost.status == late.status == Status.UNKNOWN
        for sim in (clean, dhan):
            assert sim.rollover("squareoff")["squared_off"]
    with time_machine.travel(ist(today, 15, 20), tick=True):
        workers_cycle(accounts.values())
        late.refresh_from_db()
        assert (late.status, late.filled_quantity) == (Status.COMPLETE, 2)  # found, booked
        for name, account in accounts.items():
            recon = Reconciliation.objects.get(account=account)
            assert recon.state == Reconciliation.State.MATCHED, (name, recon.error, recon.differences)
            squared = Order.objects.filter(account=account, broker_status="squared off by the broker")
            expected = [("SBIN", "SELL", 10)] + ([("TCS", "SELL", 2)] if name == "dhan" else [])
            assert sorted(squared.values_list("symbol", "action", "filled_quantity")) == expected
            assert not AuditEvent.objects.filter(account=account, action=AuditEvent.Action.RECONCILIATION).exists()
    for sim in (clean, dhan):
        assert sim.rollover("close")["expired"]
    with time_machine.travel(ist(today, 15, 35), tick=True):
        workers_cycle(accounts.values())
        for name, account in accounts.items():
            day_order = Order.objects.get(account=account, symbol="INFY")
            assert (day_order.status, day_order.filled_quantity) == (Status.CANCELLED, 0), day_order.last_error
            if name == "dhan":
                assert day_order.broker_status.upper() == "EXPIRED"  # Dhan's word, read over REST
        lost.refresh_from_db()
        assert lost.status == Status.UNKNOWN  # its orderbook still unreadable: never resent on a guess
    placed = {name: len(sim.ledger()) for name, sim in (("clean", clean), ("dhan", dhan))}
    for sim in (clean, dhan):
        sim.rollover("new_day")
    clean.sim("DELETE", "fault")  # the next morning the orderbook reads again (empty: a new day)
    with time_machine.travel(ist(today + dt.timedelta(days=1), 4, 0), tick=True):
        for _ in range(2):
            workers_cycle(accounts.values())
        open_or_unknown = [Status.PENDING, Status.SENDING, Status.UNKNOWN, Status.ACCEPTED, Status.OPEN]
        assert not Order.objects.filter(account__in=accounts.values(), status__in=open_or_unknown).exists()
        lost.refresh_from_db()
        assert lost.status == Status.CANCELLED and "rolled over" in lost.last_error
        for name, sim in (("clean", clean), ("dhan", dhan)):
            account = accounts[name]
            ledger = sim.ledger()
            assert len(ledger) == placed[name]  # none resent
            by_tag = {r["strategy"]: r for r in ledger if r["strategy"]}
            for o in Order.objects.filter(account=account):
                # Ours by tag; the square-off the broker placed (no tag) by its order id.
                row = by_tag.get(o.tag) or next(r for r in ledger if r["orderid"] == o.broker_orderid)
                assert (o.status, o.filled_quantity) == (row["status"], row["filled_quantity"]), (name, o.symbol)
            recon = services.account_books_refresh(account_id=account.pk)
            assert recon.state == Reconciliation.State.MATCHED, (name, recon.error, recon.differences)
            held = dict(Position.objects.filter(account=account).exclude(quantity=0).values_list("symbol", "quantity"))
            assert held == {options[name]: 65}  # the NRML position carried, the MIS ones squared off
            assert broker_qty(sim, options[name], "NFO", "NRML") == 65
