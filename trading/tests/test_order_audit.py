"""Issue 19, point 7: every order action is audited — placed (per account, with the batch's M-id,
who, every account and the legs), skipped, the broker's answer (one row per order outcome, never
per poll), cancel, modify, close a position, close everything, cancel all, repair, trading-state
changes — and the audit page filters them by action, account and M-id, paginated.

Real parts: PostgreSQL, Redis and brokersim (the workers' work is run here by calling the services
the tasks call); the page in headless Chromium with a screenshot."""

from __future__ import annotations

import re
from decimal import Decimal

import pytest

from accounts.models import AuditEvent
from accounts.tests.browser import chromium, in_thread
from accounts.tests.factories import account_on
from trading import services
from trading.models import Order, OrderBatch, Position
from trading.services import Leg
from trading.tests.test_batch_outcomes import ORDER, page_text, settle

A = AuditEvent.Action
Status = Order.Status
pytestmark = pytest.mark.django_db


@pytest.fixture
def two(alice, paper_clean):
    return [account_on(s, owner=alice, name=f"paper-0{i + 1}") for i, s in enumerate(paper_clean[:2])]


def rows(action, **filters):
    return list(AuditEvent.objects.filter(action=action, **filters).order_by("pk"))


def confirmed(client, url, data=None):
    return client.post(url, (data or {}) | {"confirmed": "1"})


def test_placing_writes_one_row_per_account_and_one_outcome_per_order_never_per_poll(client, alice, two):
    client.force_login(alice)
    r = client.post("/trading/orders/new/", ORDER | {"accounts": [a.pk for a in two], "confirmed": "1"})
    assert r.status_code == 302
    batch = OrderBatch.objects.get()
    group = f"M-{batch.pk}"
    placed = rows(A.ORDER_PLACED)
    assert [(e.account_name, e.user, e.group) for e in placed] == [
        ("paper-01", alice, group),
        ("paper-02", alice, group),
    ]
    assert placed[0].details["accounts"] == ["paper-01", "paper-02"] and placed[0].details["batch"] == batch.pk
    assert placed[0].message == f"{group}: BUY 5 SBIN NSE MARKET MIS (with 1 other account(s))"
    for _ in range(3):  # polls and fills: no rows of their own
        settle(two)
    accepted = rows(A.ORDER_ACCEPTED)
    assert len(accepted) == 2 and {e.group for e in accepted} == {group}
    assert all(
        e.user == alice and e.details["by"] == "system" and "accepted by the broker as" in e.message for e in accepted
    )
    assert AuditEvent.objects.filter(group=group).count() == 4


def test_rejected_and_unknown_outcomes_are_one_row_each(alice, two, paper_clean):
    rejected = services.orders_create(user=alice, accounts=[two[0]], legs=[Leg("NOSUCHSYM", "NSE", "BUY", 1)])
    settle([two[0]])
    assert rejected.orders.get().status == Status.REJECTED
    (row,) = rows(A.ORDER_REJECTED)
    assert row.group == f"M-{rejected.pk}" and row.account == two[0] and row.user == alice
    paper_clean[1].sim("POST", "fault", {"endpoint": "placeorder", "kind": "status", "value": 500})
    unknown = services.orders_create(user=alice, accounts=[two[1]], legs=[Leg("SBIN", "NSE", "BUY", 1)])
    services.orders_send_account(account_id=two[1].pk)
    assert unknown.orders.get().status == Status.UNKNOWN
    (row,) = rows(A.ORDER_UNKNOWN)
    assert row.group == f"M-{unknown.pk}" and "outcome unknown" in row.message


def test_an_entry_refused_at_send_time_and_a_skipped_account_are_audited(alice, two):
    batch = services.orders_create(user=alice, accounts=two, legs=[Leg("SBIN", "NSE", "BUY", 1)])
    services.account_trading_state_set(user=alice, account_id=two[1].pk, state="halted", reason="drill")
    settle(two)
    (refused,) = rows(A.ORDER_REJECTED)
    assert (
        refused.account == two[1]
        and refused.group == f"M-{batch.pk}"
        and "not sent: paper-02 is halted" in refused.message
    )
    two[1].refresh_from_db()
    skip = services.orders_create(user=alice, accounts=two, legs=[Leg("SBIN", "NSE", "BUY", 1)], skip_entries=True)
    (skipped,) = rows(A.ORDER_SKIPPED)
    assert (skipped.account, skipped.user, skipped.group) == (two[1], alice, f"M-{skip.pk}")
    assert "not sent to paper-02: halted (drill)" in skipped.message
    state = rows(A.TRADING_STATE, account=two[1])
    assert state[-1].user == alice and state[-1].message == "Halted: drill"


def test_cancel_modify_and_group_cancel_are_audited_with_who_and_the_group(client, alice, two):
    client.force_login(alice)
    limit = {"pricetype": "LIMIT", "price": "1.00", "place_anyway": "on"}  # resting, far from the market
    client.post("/trading/orders/new/", ORDER | limit | {"accounts": [a.pk for a in two], "confirmed": "1"})
    batch = OrderBatch.objects.get()
    group = f"M-{batch.pk}"
    settle(two)
    first, second = batch.orders.order_by("account__name")
    assert first.status == Status.OPEN
    r = client.post(f"/trading/orders/order/{first.pk}/modify/", {"pricetype": "LIMIT", "quantity": 5, "price": "1.5"})
    assert r.status_code == 302
    (mod,) = rows(A.ORDER_MODIFY)
    assert (mod.user, mod.group, mod.account) == (alice, group, two[0])
    assert "modify to 5 LIMIT @ 1.5" in mod.message and "accepted" in mod.message
    confirmed(client, f"/trading/orders/order/{first.pk}/cancel/")
    (cancel,) = rows(A.ORDER_CANCEL)
    assert (cancel.user, cancel.group, cancel.account) == (alice, group, two[0])
    assert cancel.message.endswith("cancel: now cancelled")
    confirmed(client, f"/trading/orders/{batch.pk}/cancel-all/")
    cancels = rows(A.ORDER_CANCEL)
    assert [(e.account, e.user, e.group) for e in cancels] == [(two[0], alice, group), (two[1], alice, group)]
    assert Order.objects.get(pk=second.pk).status == Status.CANCELLED


def test_closing_a_position_everything_cancel_all_and_repair_are_audited(client, alice, two, paper_clean):
    account, sim = two[0], paper_clean[0]
    client.force_login(alice)
    services.orders_create(user=alice, accounts=[account], legs=[Leg("SBIN", "NSE", "BUY", 10)])
    settle([account])
    pos = Position.objects.get(account=account, symbol="SBIN")
    r = confirmed(client, f"/trading/positions/{pos.pk}/close/", {"client_token": "a" * 32})
    exit_batch = OrderBatch.objects.latest("pk")
    assert r.status_code == 302 and exit_batch.kind == OrderBatch.Kind.EXIT
    (close,) = rows(A.POSITION_CLOSE)
    assert (close.user, close.account, close.group) == (alice, account, f"M-{exit_batch.pk}")
    assert "close NSE:SBIN MIS (10 held): SELL 10 at market, reduce-only" in close.message
    placed = rows(A.ORDER_PLACED, group=f"M-{exit_batch.pk}")
    assert len(placed) == 1 and "(exit, reduce-only)" in placed[0].message
    settle([account])

    # Cancel all on the account: the request (who) and its outcome (the worker's).
    confirmed(client, f"/trading/accounts/{account.pk}/cancel-all/")
    services.orders_cancel_all(account_id=account.pk)
    request, outcome = rows(A.CANCEL_ALL)
    assert (request.user, request.message) == (alice, "cancel all requested")
    assert outcome.user is None and outcome.details["by"] == "system" and outcome.message.startswith("cancel all: done")

    # Close everything on a flat account: requested, then "flat".
    r = confirmed(client, f"/trading/accounts/{account.pk}/close/", {"client_token": "b" * 32})
    ticket = r.url.rstrip("/").rsplit("/", 1)[1]
    services.account_close_tracked(account_id=account.pk, user_id=alice.pk, ticket=ticket)
    closed = [(e.user, e.message) for e in rows(A.ACCOUNT_CLOSED, account=account)]
    assert closed == [(alice, "close everything requested"), (alice, "close everything: flat")]

    # A repair: who, and the quantities before and after.
    sim.ok(
        "placeorder",
        strategy="manual",
        symbol="SBIN",
        exchange="NSE",
        action="BUY",
        quantity="3",
        pricetype="MARKET",
        product="MIS",
    )
    services.position_repair(
        user=alice,
        account_id=account.pk,
        exchange="NSE",
        symbol="SBIN",
        product="MIS",
        expected_ours=0,
        expected_broker=3,
    )
    (repair,) = rows(A.POSITION_REPAIRED, user=alice)
    assert repair.account == account and repair.details["after"]["quantity"] == 3


def test_audit_page_filters_by_action_account_and_group_and_hides_others_rows(client, alice, charlie, two):
    client.force_login(alice)
    b1 = services.orders_create(user=alice, accounts=two, legs=[Leg("SBIN", "NSE", "BUY", 1)])
    b2 = services.orders_create(user=alice, accounts=[two[1]], legs=[Leg("INFY", "NSE", "BUY", 1)])
    settle(two)

    def shown(query: str) -> list[tuple[str, str, str]]:
        html = client.get(f"/audit/?{query}").content.decode()
        body = html.split("<tbody>", 1)[1].split("</tbody>", 1)[0]
        found = []
        for tr in re.findall(r"<tr data-audit-action=\"(\w+)\">(.*?)</tr>", body, re.S):
            cells = [page_text(c).strip() for c in re.findall(r"<td[^>]*>(.*?)</td>", tr[1], re.S)]
            found.append((tr[0], cells[3], cells[4]))
        return found

    by_group = shown(f"group=M-{b1.pk}")
    assert sorted(by_group) == sorted(
        [("order_placed", "paper-01", f"M-{b1.pk}"), ("order_placed", "paper-02", f"M-{b1.pk}")]
        + [("order_accepted", "paper-01", f"M-{b1.pk}"), ("order_accepted", "paper-02", f"M-{b1.pk}")]
    )
    assert shown(f"group={b1.pk}") == by_group == shown(f"group=m{b1.pk}")  # however it is typed
    assert {r[2] for r in shown("action=order_placed")} == {f"M-{b1.pk}", f"M-{b2.pk}"}
    assert all(r[0] == "order_placed" for r in shown("action=order_placed"))
    assert [r[2] for r in shown(f"action=order_accepted&account={two[0].pk}")] == [f"M-{b1.pk}"]
    assert shown(f"action=order_placed&account={two[1].pk}&group=M-{b2.pk}") == [
        ("order_placed", "paper-02", f"M-{b2.pk}")
    ]
    assert "Nothing matches these filters." in client.get("/audit/?group=M-999999").content.decode()
    client.force_login(charlie)  # another trader sees none of alice's orders
    assert shown("action=order_placed") == []


def test_audit_page_paginates_keeping_its_filters(client, alice, two):
    for i in range(55):
        AuditEvent.objects.create(action=A.ORDER_PLACED, user=alice, account=two[0], group="M-7", message=f"row {i}")
    AuditEvent.objects.create(action=A.LOGIN, user=alice)
    client.force_login(alice)
    html = client.get("/audit/?action=order_placed&group=M-7").content.decode()
    assert "Page 1 of 2" in html and "?page=2&amp;action=order_placed&amp;group=M-7" in html
    assert "Page 2 of 2" in client.get("/audit/?page=2&action=order_placed&group=M-7").content.decode()


@pytest.mark.django_db(transaction=True)
def test_audit_page_in_a_browser_filters_by_group(live_server, alice, paper_clean):
    from playwright.sync_api import expect

    def setup():
        accounts = [account_on(s, owner=alice, name=f"paper-0{i + 1}") for i, s in enumerate(paper_clean[:2])]
        b1 = services.orders_create(user=alice, accounts=accounts, legs=[Leg("SBIN", "NSE", "BUY", 1)])
        services.orders_create(
            user=alice, accounts=[accounts[0]], legs=[Leg("INFY", "NSE", "BUY", 1, "LIMIT", price=Decimal("1"))]
        )
        settle(accounts)
        return b1.pk

    b1 = in_thread(setup)
    with chromium(live_server) as b:
        page = b.page(alice)
        page.goto(f"{live_server.url}/audit/")
        placed_or_accepted = "tr[data-audit-action=order_placed], tr[data-audit-action=order_accepted]"
        expect(page.locator(placed_or_accepted)).to_have_count(6)
        b.shot(page, "audit-log-orders")
        page.fill("input[name=group]", f"m{b1}")
        page.select_option("select[name=action]", "order_accepted")
        page.click("[data-audit-filter] button[type=submit]")
        expect(page.locator("[data-audit-rows] tbody tr")).to_have_count(2)
        expect(page.locator("[data-audit-group]").first).to_have_text(f"M-{b1}")
        b.shot(page, "audit-log-filtered-by-group")
        page.click("[data-audit-group] >> nth=0")  # a row's order id filters by it
        expect(page.locator("[data-audit-rows] tbody tr")).to_have_count(4)
        page = b.page(alice, dark=True)
        page.goto(f"{live_server.url}/audit/?group=M-{b1}")
        b.shot(page, "audit-log-filtered-dark")
        assert not b.errors, b.errors
