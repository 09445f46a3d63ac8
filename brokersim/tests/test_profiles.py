"""Broker profiles: what a real OpenAlgo server in front of a given broker answers, through the
REST and control APIs (and the pure rules as table tests)."""

from __future__ import annotations

import pytest

from brokersim import profiles
from brokersim.handlers.reply import Reply
from brokersim.testing import Broker, start_brokersim, stop


def use(broker, name: str) -> dict:
    return broker.sim("POST", "profile", {"profile": name})


def order(broker, pricetype="MARKET", **extra) -> dict:
    body = {
        "strategy": "t",
        "symbol": "RELIANCE",
        "exchange": "NSE",
        "action": "BUY",
        "quantity": 1,
        "pricetype": pricetype,
        "product": "MIS",
        **extra,
    }
    if pricetype == "LIMIT":
        ltp = broker.ok("quotes", symbol="RELIANCE", exchange="NSE")["data"]["ltp"]
        body["price"] = round(float(ltp) * 0.8, 1)  # far below the market: stays open
    return body


def place(broker, pricetype="MARKET") -> str:
    return broker.ok("placeorder", **order(broker, pricetype))["orderid"]


def statuses(broker) -> dict[str, str]:
    return {r["orderid"]: r["order_status"] for r in broker.ok("orderbook")["data"]["orders"]}


@pytest.mark.parametrize(
    ("texts", "shown"),
    [
        (["COMPLETE", "OPEN"], ["complete", "open"]),
        (["REJECTED", "OPEN PENDING", "TRIGGER PENDING"], ["rejected", "rejected", "trigger pending"]),
        (["CANCELLED", "VALIDATION PENDING", "AMO REQ RECEIVED"], ["cancelled", "cancelled", "cancelled"]),
        ([], []),
    ],
)
def test_kite_carry_over(texts, shown):
    assert profiles.kite_carry_over(texts) == shown


def test_kite_carry_over_fails_on_an_unknown_first_row():
    with pytest.raises(Reply) as e:
        profiles.kite_carry_over(["OPEN PENDING", "COMPLETE"])
    assert e.value.status == 500


def test_profile_is_switched_shown_and_reset(broker):
    assert broker.sim("GET", "profile")["profile"] == "clean"
    out = use(broker, "zerodha")
    assert (out["profile"], out["wire"], out["broker"]) == ("zerodha", "live", "zerodha")
    status = broker.sim("GET", "status")
    assert status["broker_profile"] == "zerodha" and status["profile"] == "live"
    assert broker.ok("ping")["data"]["broker"] == "zerodha"
    r = broker.http.post("/_sim/profile", json={"profile": "nope"})
    assert r.status_code == 400 and "zerodha" in r.json()["message"]
    broker.sim("POST", "reset")
    assert broker.sim("GET", "profile")["profile"] == "clean"
    assert broker.sim("GET", "status")["profile"] == "sandbox"


def test_zerodha_transient_state_takes_the_previous_rows_status(broker):
    use(broker, "zerodha")
    done = place(broker)  # a MARKET order: complete
    assert statuses(broker)[done] == "complete"
    live = place(broker, "LIMIT")
    # Its first read shows "OPEN PENDING", which Zerodha's mapping does not know: it takes the
    # status of the row before it (the complete one).
    assert statuses(broker)[live] == "complete"
    assert statuses(broker)[live] == "open"
    assert broker.ok("orderstatus", orderid=live, strategy="t")["data"]["order_status"] == "open"
    rows = broker.ok("orderbook")["data"]["orders"]
    assert rows and all("strategy" not in r for r in rows)
    trades = broker.ok("tradebook")["data"]
    assert trades and all("strategy" not in t for t in trades)


def test_zerodha_transient_state_on_the_first_row_is_a_500(broker):
    use(broker, "zerodha")
    live = place(broker, "LIMIT")
    r = broker.api("orderbook")
    assert r.status_code == 500 and r.json()["status"] == "error"
    assert statuses(broker)[live] == "open"  # settled by the next read


def test_zerodha_orderstatus_sees_the_carry_over(broker):
    use(broker, "zerodha")
    place(broker)
    live = place(broker, "LIMIT")
    assert broker.ok("orderstatus", orderid=live, strategy="t")["data"]["order_status"] == "complete"
    assert broker.ok("orderstatus", orderid=live, strategy="t")["data"]["order_status"] == "open"


def test_dhan_status_words(broker):
    use(broker, "dhan")
    done = place(broker)
    live = place(broker, "LIMIT")
    assert statuses(broker) == {done: "TRADED", live: "TRANSIT"}
    assert statuses(broker)[live] == "PENDING"
    assert broker.ok("orderstatus", orderid=live, strategy="t")["data"]["order_status"] == "PENDING"
    broker.ok("cancelorder", orderid=live, strategy="t")
    assert statuses(broker)[live] == "CANCELLED"


def test_xts_status_words(broker):
    use(broker, "xts")
    assert broker.ok("ping")["data"]["broker"] == "iifl"
    done = place(broker)
    body = order(broker, "LIMIT")
    live = broker.ok("placeorder", **body)["orderid"]
    assert statuses(broker) == {done: "Filled", live: "PendingNew"}
    assert statuses(broker)[live] == "New"
    broker.ok(
        "modifyorder",
        orderid=live,
        **{k: body[k] for k in ("strategy", "symbol", "exchange", "action", "product", "pricetype", "quantity")},
        price=body["price"] - 1,
        trigger_price=0,
        disclosed_quantity=0,
    )
    assert statuses(broker)[live] == "Replaced"
    broker.ok("cancelorder", orderid=live, strategy="t")
    assert statuses(broker)[live] == "Cancelled"


def test_angel_answers_a_failed_book_read_with_an_empty_book(broker):
    use(broker, "angel")
    place(broker)
    broker.sim("POST", "fault", {"endpoint": "orderbook", "kind": "status", "value": 500, "count": 1})
    assert broker.ok("orderbook") == {"status": "success", "data": []}
    assert broker.ok("orderbook")["data"]["orders"]  # the fault is spent: the real book again
    broker.sim("POST", "session", {"expired": True})
    for book in ("orderbook", "tradebook", "positionbook", "holdings"):
        assert broker.ok(book) == {"status": "success", "data": []}
    assert broker.api("funds").status_code == 403  # not a book: the error stays


def test_dead_token_pings_but_shows_nothing_and_refuses_orders(broker):
    use(broker, "dead_token")
    assert broker.ok("ping")["data"]["message"] == "pong"
    assert broker.ok("funds")["data"] == {}
    for book in ("orderbook", "tradebook", "positionbook", "holdings"):
        assert broker.ok(book)["data"] == []
    r = broker.api("placeorder", **order(broker))
    assert r.status_code == 403 and r.json()["status"] == "error"
    assert broker.ledger() == []


def test_semi_auto_queues_orders_until_approved(broker):
    use(broker, "semi_auto")
    out = broker.ok("placeorder", **order(broker))
    assert out["mode"] == "semi_auto" and "orderid" not in out
    assert out["message"] == "Order queued for approval in Action Center"
    assert broker.ledger() == []
    assert broker.sim("GET", "profile")["pending_approvals"] == [out["pending_order_id"]]
    for route, body in (
        ("modifyorder", {"orderid": "1"}),
        ("cancelorder", {"orderid": "1", "strategy": "t"}),
        ("cancelallorder", {"strategy": "t"}),
        ("closeposition", {"strategy": "t"}),
    ):
        if route == "modifyorder":
            body.update(order(broker, "LIMIT"), trigger_price=0, disclosed_quantity=0)
        r = broker.api(route, **body)
        assert r.status_code == 403, (route, r.text)
        assert "not allowed in Semi-Auto mode" in r.json()["message"]
    approved = broker.sim("POST", "approve", {"pending_order_id": out["pending_order_id"]})
    assert approved["http_status"] == 200
    (placed,) = broker.ledger()
    assert placed["orderid"] == approved["result"]["orderid"] and placed["status"] == "complete"
    r = broker.http.post("/_sim/approve", json={"pending_order_id": out["pending_order_id"]})
    assert r.status_code == 400  # approved once only


def test_cli_deals_profiles_to_instances(tmp_path):
    proc, accounts = start_brokersim(tmp_path, "--profiles", "zerodha,semi_auto", accounts=3)
    try:
        brokers = [Broker(info) for info in accounts]
        assert [b.sim("GET", "profile")["profile"] for b in brokers] == ["zerodha", "semi_auto", "zerodha"]
        assert accounts[0]["broker"] == "zerodha"
        use(brokers[0], "clean")
        brokers[0].sim("POST", "reset")
        assert brokers[0].sim("GET", "profile")["profile"] == "zerodha"  # reset returns to the CLI's
        for b in brokers:
            b.http.close()
    finally:
        stop(proc)
