"""The OpenAlgo client against brokersim (no mocks): outcome classes of invariant I2."""

from __future__ import annotations

import socket
from decimal import Decimal

import pytest

from openalgo_client.rest import Funds, OpenAlgoClient, Outcome, Reason, classify, error_message, to_decimal


@pytest.fixture
def sim(paper_clean):
    return paper_clean[0]


@pytest.fixture
def client(sim):
    c = OpenAlgoClient(sim.host, sim.api_key, timeout=2.0)
    yield c
    c.close()


def order(client, **kw):
    args = {"strategy": "t", "symbol": "SBIN", "exchange": "NSE", "action": "BUY", "quantity": 1, "product": "MIS"}
    args.update(kw)
    return client.placeorder(**args)


def test_accepted(client, sim):
    r = order(client)
    assert (r.outcome, r.reason, r.status_code) == (Outcome.ACCEPTED, Reason.OK, 200)
    assert r.body["orderid"] == sim.ledger()[0]["orderid"]


@pytest.mark.parametrize(
    ("kw", "reason", "message"),
    [
        ({"quantity": 0}, Reason.VALIDATION, "{'quantity': ['Quantity must be a positive number.']}"),
        ({"symbol": "NOPE"}, Reason.VALIDATION, "Symbol 'NOPE' not found for exchange 'NSE'"),
        ({"product": "NRML"}, Reason.VALIDATION, "NRML product is not allowed"),
    ],
)
def test_definitive_rejections(client, sim, kw, reason, message):
    r = order(client, **kw)
    assert (r.outcome, r.reason) == (Outcome.REJECTED, reason)
    assert r.message.startswith(message)
    assert sim.ledger() == []


def test_read_endpoint_error_object_is_flattened(sim):
    c = OpenAlgoClient(sim.host, sim.api_key)
    r = c.call("quotes", symbol="SBIN")  # exchange missing: the JSON-object error shape
    assert (r.outcome, r.reason) == (Outcome.REJECTED, Reason.VALIDATION)
    assert r.message == "exchange: Missing data for required field."
    c.close()


def test_invalid_key_versus_expired_session(sim):
    wrong = OpenAlgoClient(sim.host, "f" * 64)
    assert wrong.ping().reason is Reason.AUTH
    assert wrong.key_is_valid() is False
    right = OpenAlgoClient(sim.host, sim.api_key)
    sim.sim("POST", "session", {"expired": True})
    assert right.ping().reason is Reason.AUTH
    assert right.key_is_valid() is True  # ping 403 + search 200: the broker session expired
    wrong.close()
    right.close()


def test_a_read_backs_off_and_retries_a_429(client, sim):
    sim.sim("POST", "fault", {"endpoint": "orderbook", "kind": "status", "value": 429, "count": 2})
    assert client.orderbook().ok
    assert sim.sim("GET", "status")["requests"]["orderbook"] == 3


def test_an_order_writer_does_not_retry_a_429(client, sim):
    """A retry here would bypass the caller's per-host throttle, and OpenAlgo passes a broker's own
    429 through: only an orderbook read tells whether it was placed, so the caller decides."""
    sim.sim("POST", "fault", {"endpoint": "placeorder", "kind": "status", "value": 429, "count": 2})
    r = order(client)
    assert (r.outcome, r.reason, r.status_code) == (Outcome.UNKNOWN, Reason.RATE_LIMITED, 429)
    assert sim.sim("GET", "status")["requests"]["placeorder"] == 1
    assert sim.ledger() == []


def test_success_without_an_orderid_is_unknown(client, sim):
    sim.sim("POST", "fault", {"endpoint": "placeorder", "kind": "no_orderid", "count": 1})
    r = order(client)
    assert (r.outcome, r.reason) == (Outcome.UNKNOWN, Reason.NO_ORDERID)
    assert len(sim.ledger()) == 1  # it was placed: only the orderbook can name it


@pytest.mark.parametrize("value", [None, "empty"], ids=["{}", "empty body"])
def test_a_200_without_status_is_unknown(client, sim, value):
    sim.sim("POST", "fault", {"endpoint": "placeorder", "kind": "no_status", "value": value, "count": 1})
    r = order(client)
    assert (r.outcome, r.reason) == (Outcome.UNKNOWN, Reason.BAD_RESPONSE)
    assert len(sim.ledger()) == 1


@pytest.mark.parametrize(
    ("fault", "reason", "executed"),
    [
        ({"kind": "status", "value": 500}, Reason.SERVER_ERROR, 0),
        ({"kind": "status", "value": 502}, Reason.SERVER_ERROR, 0),
        ({"kind": "drop_after_execute"}, Reason.BROKEN_CONNECTION, 1),
        ({"kind": "reset"}, Reason.BROKEN_CONNECTION, 0),
        ({"kind": "malformed"}, Reason.BAD_RESPONSE, 1),
        ({"kind": "hang", "value": 4}, Reason.TIMEOUT, 0),
        ({"kind": "late_execute", "value": 1}, Reason.BROKEN_CONNECTION, 0),  # placed 1 s later
    ],
)
def test_unknown_outcomes(client, sim, fault, reason, executed):
    """After an UNKNOWN, only the broker's books tell what happened: here, the ledger."""
    sim.sim("POST", "fault", {"endpoint": "placeorder", "count": 1, **fault})
    r = order(client)
    assert (r.outcome, r.reason) == (Outcome.UNKNOWN, reason)
    assert len(sim.ledger()) == executed


def test_connection_refused_is_a_definitive_reject():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    c = OpenAlgoClient(f"http://127.0.0.1:{port}", "k" * 64, timeout=1)
    r = c.ping()
    assert (r.outcome, r.reason) == (Outcome.REJECTED, Reason.UNREACHABLE)
    c.close()


def test_funds_parse_both_profiles(paper_clean):
    sandbox, live = paper_clean[0], paper_clean[1]
    parsed = []
    for sim in (sandbox, live):
        c = OpenAlgoClient(sim.host, sim.api_key)
        raw = c.funds().data
        parsed.append(Funds.parse(raw))
        c.close()
    assert isinstance(sandbox.ok("funds")["data"]["availablecash"], float)
    assert isinstance(live.ok("funds")["data"]["availablecash"], str)
    assert all(isinstance(f.available_cash, Decimal) and f.available_cash > 0 for f in parsed)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("320.66", Decimal("320.66")),
        (320.66, Decimal("320.66")),
        ("", Decimal("0")),
        (None, Decimal("0")),
        ("abc", Decimal("0")),
        (float("nan"), Decimal("0")),
    ],
)
def test_to_decimal(raw, expected):
    assert to_decimal(raw) == expected


def test_error_message_shapes():
    assert error_message({"status": "error", "message": "{'a': ['x']}"}) == "{'a': ['x']}"
    assert error_message({"status": "error", "message": {"a": ["x", "y"], "b": "z"}}) == "a: x, y; b: z"
    assert repr(OpenAlgoClient("http://h", "secret-key-1234")) == "OpenAlgoClient(http://h)"


U, R, A = Outcome.UNKNOWN, Outcome.REJECTED, Outcome.ACCEPTED


@pytest.mark.parametrize(
    ("endpoint", "code", "body", "outcome", "reason"),
    [
        ("placeorder", 200, {"status": "success", "orderid": "1"}, A, Reason.OK),
        ("placeorder", 200, {"status": "success"}, U, Reason.NO_ORDERID),
        ("placeorder", 200, {"status": "success", "orderid": ""}, U, Reason.NO_ORDERID),
        (
            "placeorder",
            200,
            {"status": "success", "mode": "semi_auto", "pending_order_id": 7},
            U,
            Reason.PENDING_APPROVAL,
        ),
        ("cancelorder", 200, {"status": "success", "mode": "semi_auto"}, U, Reason.PENDING_APPROVAL),
        ("placeorder", 200, {}, U, Reason.BAD_RESPONSE),
        ("placeorder", 200, {"status": "queued"}, U, Reason.BAD_RESPONSE),
        ("placeorder", 200, None, U, Reason.BAD_RESPONSE),
        ("placeorder", 200, {"status": "error", "message": "no"}, R, Reason.VALIDATION),
        ("placeorder", 400, {"status": "error", "message": "no"}, R, Reason.VALIDATION),
        ("placeorder", 403, {"status": "error", "message": "Invalid openalgo apikey"}, R, Reason.AUTH),
        # Semi-auto mode's refusals are not an authentication failure: the key works.
        *(
            (ep, 403, {"status": "error", "message": f"{what} is not allowed in Semi-Auto mode."}, R, Reason.SEMI_AUTO)
            for ep, what in (
                ("modifyorder", "Modify order"),
                ("cancelorder", "Cancel order"),
                ("cancelallorder", "Cancel all orders"),
                ("closeposition", "Close position"),
            )
        ),
        ("cancelorder", 403, {"status": "error", "message": "Incorrect `api_key` or `access_token`."}, R, Reason.AUTH),
        ("placeorder", 429, {"message": "10 per 1 second"}, U, Reason.RATE_LIMITED),
        ("modifyorder", 429, None, U, Reason.RATE_LIMITED),
        ("orderbook", 429, {"message": "10 per 1 second"}, R, Reason.RATE_LIMITED),
        ("placeorder", 502, None, U, Reason.SERVER_ERROR),
        ("orderbook", 200, {"status": "success", "data": []}, A, Reason.OK),
        ("orderbook", 200, {"data": []}, U, Reason.BAD_RESPONSE),
        ("placesmartorder", 200, {"status": "success", "message": "Positions Already Matched."}, A, Reason.OK),
    ],
)
def test_classify(endpoint, code, body, outcome, reason):
    r = classify(endpoint, code, body)
    assert (r.outcome, r.reason) == (outcome, reason)


def test_an_order_queued_for_approval_says_so():
    r = classify("placeorder", 200, {"status": "success", "mode": "semi_auto", "pending_order_id": "p-17"})
    assert r.message == "queued for approval at OpenAlgo (pending order p-17)"
    assert r.shows_semi_auto


def test_only_semi_auto_replies_show_semi_auto():
    body = {"status": "error", "message": "Cancel order is not allowed in Semi-Auto mode."}
    refused = classify("cancelorder", 403, body)
    assert refused.shows_semi_auto and refused.message.startswith("Cancel order is not allowed")
    assert not classify("placeorder", 200, {"status": "success", "orderid": "1"}).shows_semi_auto
    assert not classify("placeorder", 403, {"status": "error", "message": "Invalid openalgo apikey"}).shows_semi_auto
