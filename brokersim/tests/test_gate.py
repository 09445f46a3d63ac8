"""The request gate step by step, and the order its steps run in (in-process, no subprocess)."""

from __future__ import annotations

import pytest
from aiohttp.test_utils import TestClient, TestServer

from brokersim import faults as fl
from brokersim import gate
from brokersim import schemas as sc
from brokersim.faults import Fault, FaultKind
from brokersim.handlers.reply import Reply
from brokersim.ratelimit import MovingWindow
from brokersim.server import make_rest_app
from brokersim.simulator import Simulator

ENDPOINTS = {"placeorder", "funds"}


@pytest.fixture(scope="module")
def sim():
    return Simulator(accounts=1, seed=3, order_rate_limit=1, api_rate_limit=3, history_days=1)


@pytest.fixture
def inst(sim):
    inst = sim.instances[0]
    inst.reset()
    return inst


@pytest.fixture
async def client(inst):
    async with TestClient(TestServer(make_rest_app(inst))) as c:
        yield c


# ---------------------------------------------------------------------- faults
def test_a_fault_is_drawn_only_for_its_endpoint_and_counts_down():
    status = Fault("placeorder", FaultKind.STATUS, 503, count=1)
    latency = Fault("*", FaultKind.LATENCY, 10)
    armed = [status, latency]
    assert fl.take(armed, "funds") == [latency]
    assert status.count == 1
    assert fl.take(armed, "placeorder") == [status, latency]
    assert armed == [latency]  # used up; the uncounted one stays


def test_arm_sorts_faults_by_when_they_act():
    armed = fl.arm(
        [
            Fault("*", FaultKind.LATENCY, 10),
            Fault("*", FaultKind.MALFORMED),
            Fault("*", FaultKind.STATUS, 500),
            Fault("*", FaultKind.REJECT, "no"),
            Fault("*", FaultKind.DROP_AFTER_EXECUTE),
        ],
        "placeorder",
    )
    assert [f.kind for f in armed.before] == [FaultKind.LATENCY, FaultKind.STATUS]
    assert armed.execution.for_engine() == {"kind": "reject", "value": "no"}
    assert armed.after.kind == FaultKind.DROP_AFTER_EXECUTE


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (
            {"kind": "nope"},
            "kind must be one of ['drop_after_execute', 'hang', 'late_average_price', 'late_execute', 'latency', "
            "'malformed', 'no_orderid', 'no_status', 'orderbook_omits', 'partial_fill', 'pending_reads', "
            "'positionbook_lag', 'reject', 'reset', 'status']",
        ),
        ({"kind": "latency", "endpoint": "nope"}, "unknown endpoint nope"),
        ({"kind": "latency", "count": 0}, "count must be a positive integer"),
        ({"kind": "status", "value": 418}, "status must be one of 500, 502, 503, 504, 429, 403"),
    ],
)
def test_bad_fault_requests_are_refused_with_their_reason(body, message):
    with pytest.raises(fl.BadFault) as e:
        fl.parse_fault(body, ENDPOINTS)
    assert str(e.value) == message


def test_a_parsed_fault_shows_its_kind_as_the_wire_string():
    fault = fl.parse_fault({"kind": "status", "value": 503, "count": 2}, ENDPOINTS)
    assert fault.kind is FaultKind.STATUS
    assert fault.to_json() == {"endpoint": "*", "kind": "status", "value": 503, "count": 2}
    assert type(fault.to_json()["kind"]) is str


# ---------------------------------------------------------------------- single steps
def test_rate_limit_refuses_past_the_window_with_the_limiter_text():
    bucket = MovingWindow(2)
    gate.check_rate_limit(bucket, "funds", "1.2.3.4")
    gate.check_rate_limit(bucket, "funds", "1.2.3.4")
    with pytest.raises(Reply) as e:
        gate.check_rate_limit(bucket, "funds", "1.2.3.4")
    assert (e.value.status, e.value.body) == (429, {"message": "2 per 1 second"})
    gate.check_rate_limit(bucket, "funds", "5.6.7.8")  # a window per client


def test_order_routes_share_the_order_limiter(inst):
    assert gate.bucket_for(inst, "placeorder") is gate.bucket_for(inst, "cancelorder") is inst.limits["order"]
    assert gate.bucket_for(inst, "placesmartorder") is inst.limits["smart"]
    assert gate.bucket_for(inst, "funds") is inst.limits["api"]


def test_validation_errors_are_text_for_order_writers_and_dicts_otherwise():
    with pytest.raises(Reply) as e:
        gate.validate("orderstatus", sc.OrderId(), {"apikey": "k", "orderid": "1"})
    assert e.value.body["message"] == "{'strategy': ['Missing data for required field.']}"
    with pytest.raises(Reply) as e:
        gate.validate("quotes", sc.SymbolExchange(), [])
    assert (e.value.status, e.value.body["message"]) == (400, {"_schema": ["Invalid input type."]})


def test_an_expired_session_refuses_all_but_key_only_endpoints(inst):
    with pytest.raises(Reply) as e:
        gate.authenticate(inst, "funds", {"apikey": "0" * 64})
    assert (e.value.status, e.value.body["message"]) == (403, gate.INVALID_KEY)
    inst.session_expired = True
    with pytest.raises(Reply):
        gate.authenticate(inst, "funds", {"apikey": inst.api_key})
    gate.authenticate(inst, "search", {"apikey": inst.api_key})


# ---------------------------------------------------------------------- the order of the steps
async def test_a_bad_key_still_takes_a_rate_limit_token(client, inst):
    r = await client.post("/api/v1/funds", json={"apikey": "0" * 64})
    assert r.status == 403
    for _ in range(2):
        assert (await client.post("/api/v1/funds", json={"apikey": inst.api_key})).status == 200
    r = await client.post("/api/v1/funds", json={"apikey": inst.api_key})
    assert (r.status, await r.json()) == (429, {"message": "3 per 1 second"})


async def test_a_limited_request_draws_no_fault(client, inst):
    inst.faults.append(Fault("funds", FaultKind.STATUS, 503, count=5))
    for _ in range(3):
        assert (await client.post("/api/v1/funds", json={"apikey": inst.api_key})).status == 503
    assert (await client.post("/api/v1/funds", json={"apikey": inst.api_key})).status == 429
    assert inst.faults[0].count == 2


async def test_a_status_fault_answers_before_the_body_or_key_is_looked_at(client, inst):
    inst.faults.append(Fault("funds", FaultKind.STATUS, 502))
    r = await client.post("/api/v1/funds", data=b"not json")
    assert r.status == 502 and r.content_type == "text/html"


async def test_a_fault_acts_only_on_its_endpoint(client, inst):
    inst.faults.append(Fault("placeorder", FaultKind.STATUS, 500))
    assert (await client.post("/api/v1/funds", json={"apikey": inst.api_key})).status == 200
    r = await client.post("/api/v1/placeorder", json={"apikey": inst.api_key})
    assert (r.status, (await r.json())["message"]) == (500, "Failed to place order due to internal error")


async def test_the_body_is_checked_before_the_key(client):
    assert (await client.post("/api/v1/funds", data=b"not json")).status == 500
    r = await client.post("/api/v1/orderstatus", json={"apikey": "0" * 64})
    assert r.status == 400  # the schema refuses it before the bad key would
