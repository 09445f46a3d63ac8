"""Where the REST and WebSocket clients connect, against a real brokersim: the URL is joined
safely and the address policy is applied to the address actually connected to."""

from __future__ import annotations

import socket

import pytest

from openalgo_client.netpolicy import NetworkPolicy
from openalgo_client.rest import OpenAlgoClient, Outcome, Reason
from openalgo_client.ws import BrokerSocket, ConnectError

LOOPBACK = NetworkPolicy.parse(["loopback"])
PUBLIC_ONLY = NetworkPolicy.parse(["public"])


@pytest.fixture
def sim(paper_clean):
    return paper_clean[0]


def requests_seen(sim) -> dict:
    return sim.sim("GET", "status")["requests"]


@pytest.mark.parametrize("suffix", ["/_sim/reset?a=", "/_sim/reset#", "/x/../_sim/reset?"])
def test_a_query_in_the_host_cannot_take_over_the_path(sim, suffix):
    """Before: `http://127.0.0.1:5100/_sim/reset?a=` sent POST /_sim/reset?a=/api/v1/ping."""
    sim.ok("ping")
    c = OpenAlgoClient(sim.host + suffix, sim.api_key, timeout=2)
    r = c.ping()
    c.close()
    assert (r.outcome, r.reason) == (Outcome.REJECTED, Reason.NOT_ALLOWED)
    assert requests_seen(sim) == {"ping": 1}  # nothing reset, nothing else reached it


def test_the_client_joins_paths_under_the_base_and_refuses_odd_endpoints(sim):
    c = OpenAlgoClient(sim.host + "/", sim.api_key, policy=LOOPBACK)
    assert c.ping().ok
    for endpoint in ("../_sim/reset", "/_sim/reset", "ping?x=1", "http://127.0.0.1:9/api"):
        with pytest.raises(ValueError, match="not an OpenAlgo endpoint"):
            c.call(endpoint)
    c.close()
    assert requests_seen(sim) == {"ping": 1}


def test_an_address_outside_the_policy_is_never_connected_to(sim):
    c = OpenAlgoClient(sim.host, sim.api_key, policy=PUBLIC_ONLY)
    r = c.ping()
    assert (r.outcome, r.reason) == (Outcome.REJECTED, Reason.NOT_ALLOWED)
    c.close()
    # `localhost` is a name: what it resolves to is checked, not the name.
    named = OpenAlgoClient(sim.host.replace("127.0.0.1", "localhost"), sim.api_key, policy=PUBLIC_ONLY)
    assert named.ping().reason is Reason.NOT_ALLOWED
    named.close()
    assert requests_seen(sim) == {}
    allowed = OpenAlgoClient(sim.host, sim.api_key, policy=LOOPBACK)
    assert allowed.ping().ok
    allowed.close()


def test_the_policy_is_read_at_every_connection(sim):
    """A policy source: the administrator's change applies to the next connection."""
    current = [LOOPBACK]
    c = OpenAlgoClient(sim.host, sim.api_key, policy=lambda: current[0], timeout=2)
    assert c.ping().ok
    current[0] = PUBLIC_ONLY
    c._http.close()  # drop the pooled connection, as keep-alive expiry would
    c = OpenAlgoClient(sim.host, sim.api_key, policy=lambda: current[0], timeout=2)
    assert c.ping().reason is Reason.NOT_ALLOWED
    c.close()


def test_dns_rebinding_reaches_only_a_checked_address(sim, monkeypatch):
    """The name is resolved once per connection, by the check, and the connection goes to the
    address checked: a name that answers loopback now (whatever it answered before) is refused.
    (The resolver is the outside world, faked; nothing but loopback is ever connected to.)"""
    port = int(sim.host.rsplit(":", 1)[1])
    real = socket.getaddrinfo
    lookups = []

    def rebinding(host, *a, **kw):
        lookups.append(host)
        return real("127.0.0.1" if host == "rebind.test" else host, *a, **kw)

    monkeypatch.setattr(socket, "getaddrinfo", rebinding)
    c = OpenAlgoClient(f"http://rebind.test:{port}", sim.api_key, policy=PUBLIC_ONLY, timeout=2)
    assert c.ping().reason is Reason.NOT_ALLOWED
    c.close()
    assert requests_seen(sim) == {}
    assert lookups == ["rebind.test"]  # one lookup: the one checked, never a second one to connect
    ok = OpenAlgoClient(f"http://rebind.test:{port}", sim.api_key, policy=LOOPBACK, timeout=2)
    assert ok.ping().ok
    ok.close()
    assert lookups.count("rebind.test") == 2 and "127.0.0.1" in lookups  # then its checked address


def test_the_websocket_obeys_the_same_policy(sim):
    def sock(url, policy):
        return BrokerSocket(url, sim.api_key, on_frames=lambda: None, on_closed=lambda why: None, policy=policy)

    with pytest.raises(ConnectError, match="not in the networks the administrator allows"):
        sock(sim.ws_url, PUBLIC_ONLY).connect()
    with pytest.raises(ConnectError, match="query"):
        sock(sim.ws_url + "/?x=1", LOOPBACK).connect()
    ok = sock(sim.ws_url, LOOPBACK)
    assert ok.connect()["status"] == "success"
    ok.close()
