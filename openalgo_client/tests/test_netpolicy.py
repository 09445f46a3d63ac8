"""The URL and address policy, as tables (no network: name resolution is faked where it matters)."""

from __future__ import annotations

import ipaddress
import socket

import pytest
from hypothesis import given
from hypothesis import strategies as st

from openalgo_client.netpolicy import (
    NEVER,
    AddressRefused,
    NetworkPolicy,
    UrlRejected,
    allowed_addresses,
    normalise_base_url,
    normalise_ws_url,
    parse_entry,
)


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("http://127.0.0.1:5000", "http://127.0.0.1:5000"),
        ("http://127.0.0.1:5000/", "http://127.0.0.1:5000"),
        ("  HTTP://OpenAlgo.Example.COM:5000/  ", "http://openalgo.example.com:5000"),
        ("https://openalgo.example.com:443/", "https://openalgo.example.com"),
        ("http://openalgo.example.com:80", "http://openalgo.example.com"),
        ("https://example.com/openalgo/", "https://example.com/openalgo"),
        ("http://[::1]:5000", "http://[::1]:5000"),
        ("http://[0:0:0:0:0:0:0:1]:5000", "http://[::1]:5000"),
        ("http://openalgo_app:5000", "http://openalgo_app:5000"),  # a docker-compose service name
        ("http://bücher.example", "http://xn--bcher-kva.example"),
    ],
)
def test_normalise_base_url_accepts(url, expected):
    assert normalise_base_url(url) == expected


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("http://127.0.0.1:5100/_sim/reset?a=", "query"),  # took over the path before
        ("http://127.0.0.1:5100?", "query"),
        ("http://127.0.0.1:5100/#x", "fragment"),
        ("http://user:pw@127.0.0.1:5000", "user name"),
        ("http://@127.0.0.1:5000", "user name"),
        ("ftp://127.0.0.1", "http://"),
        ("file:///etc/passwd", "http://"),
        ("gopher://127.0.0.1:6379/_FLUSHALL", "http://"),
        ("javascript:alert(1)", "http://"),
        ("127.0.0.1:5000", "http://"),
        ("http://", "no host"),
        ("http://127.0.0.1:0", "port"),
        ("http://127.0.0.1:99999", "port"),
        ("http://127.0.0.1:abc", "port"),
        ("http://127.0.0.1/a/../_sim", "path"),
        ("http://127.0.0.1/%2e%2e/_sim", "path"),
        ("http://127.0.0.1//x", "path"),
        ("http://127.0.0.1/a;b", "path"),
        ("http://127.0.0.1\\@evil.example", "backslash"),
        ("http://127.0.0.1:5000/\r\nX-Injected: 1", "control"),
        ("http://exa mple.com", "spaces"),
        ("http://[fe80::1%25eth0]:5000", "IPv6"),
        ("http://[not-ipv6]:5000", "IPv6"),
        ("http://-bad-.example", "host name"),
        ("http://a..b", "host name"),
        ("", "Enter"),
    ],
)
def test_normalise_base_url_refuses(url, why):
    with pytest.raises(UrlRejected, match=why):
        normalise_base_url(url)


def test_ws_urls_take_ws_schemes_only():
    assert normalise_ws_url("WS://127.0.0.1:8765/") == "ws://127.0.0.1:8765"
    assert normalise_ws_url("wss://feed.example.com/ws") == "wss://feed.example.com/ws"
    for bad in ("http://127.0.0.1:8765", "ws://127.0.0.1:8765/?x=1", "ws://u:p@127.0.0.1:8765"):
        with pytest.raises(UrlRejected):
            normalise_ws_url(bad)


@given(st.text(max_size=60))
def test_a_normalised_url_is_a_fixed_point_and_carries_no_query_or_credentials(text):
    try:
        out = normalise_base_url("http://h.example" + text)
    except UrlRejected:
        return
    assert normalise_base_url(out) == out
    assert not any(c in out for c in "?#@\\ \r\n%")


PUBLIC_ONLY = NetworkPolicy.parse(["public"])  # the production default
EMBEDDED = NetworkPolicy.parse(["public", "loopback"])  # the embedded default
LAN = NetworkPolicy.parse(["public", "loopback", "private"])
ONE_LAN_HOST = NetworkPolicy.parse(["192.168.1.20"])
EVERYTHING = NetworkPolicy.parse(["0.0.0.0/0", "::/0", "public"])


@pytest.mark.parametrize(
    ("address", "public_only", "embedded", "lan", "one_lan_host", "everything"),
    [
        ("8.8.8.8", True, True, True, False, True),
        ("2606:4700:4700::1111", True, True, True, False, True),
        ("127.0.0.1", False, True, True, False, True),
        ("127.10.0.1", False, True, True, False, True),
        ("::1", False, True, True, False, True),
        ("::ffff:127.0.0.1", False, True, True, False, True),  # IPv4-mapped: judged as IPv4
        ("192.168.1.20", False, False, True, True, True),
        ("192.168.1.21", False, False, True, False, True),
        ("10.1.2.3", False, False, True, False, True),
        ("172.20.0.5", False, False, True, False, True),
        ("100.101.102.103", False, False, True, False, True),  # Tailscale / CGNAT
        ("fd12:3456::1", False, False, True, False, True),
        # Never, whatever is allowed: metadata, link-local, "this host", multicast, tunnels.
        ("169.254.169.254", False, False, False, False, False),
        ("169.254.0.1", False, False, False, False, False),
        ("::ffff:169.254.169.254", False, False, False, False, False),
        ("64:ff9b::a9fe:a9fe", False, False, False, False, False),  # NAT64 of 169.254.169.254
        ("::a9fe:a9fe", False, False, False, False, False),  # IPv4-compatible
        ("fe80::1", False, False, False, False, False),
        ("fd00:ec2::254", False, False, False, False, False),
        ("100.100.100.200", False, False, False, False, False),
        ("168.63.129.16", False, False, False, False, False),
        ("0.0.0.0", False, False, False, False, False),
        ("::", False, False, False, False, False),
        ("224.0.0.1", False, False, False, False, False),
        ("255.255.255.255", False, False, False, False, False),
        ("ff02::1", False, False, False, False, False),
        ("2002:a9fe:a9fe::1", False, False, False, False, False),  # 6to4
        ("2001:0:a9fe:a9fe::1", False, False, False, False, False),  # Teredo
    ],
)
def test_policy_table(address, public_only, embedded, lan, one_lan_host, everything):
    got = [p.allows(address) for p in (PUBLIC_ONLY, EMBEDDED, LAN, ONE_LAN_HOST, EVERYTHING)]
    assert got == [public_only, embedded, lan, one_lan_host, everything]


@given(st.ip_addresses())
def test_nothing_in_never_is_ever_allowed(ip):
    if any(ip in n for n in NEVER if n.version == ip.version):
        assert not EVERYTHING.allows(ip)


@pytest.mark.parametrize(
    ("entry", "expected"),
    [
        ("public", (True, ())),
        (" Loopback ", (False, (ipaddress.ip_network("127.0.0.0/8"), ipaddress.ip_network("::1/128")))),
        ("192.168.1.7", (False, (ipaddress.ip_network("192.168.1.7/32"),))),
        ("192.168.1.7/24", (False, (ipaddress.ip_network("192.168.1.0/24"),))),
        ("fd00::/8", (False, (ipaddress.ip_network("fd00::/8"),))),
    ],
)
def test_parse_entry(entry, expected):
    assert parse_entry(entry) == expected


@pytest.mark.parametrize("entry", ["lan", "192.168.1.300", "example.com", "10.0.0.0/33"])
def test_parse_entry_refuses(entry):
    with pytest.raises(ValueError, match="is not public, loopback, private or a network"):
        parse_entry(entry)


def test_policy_parse_merges_and_describes():
    p = NetworkPolicy.parse(["loopback", "", "127.0.0.0/8", "public"])
    assert p.public and p.describe() == "the public internet, 127.0.0.0/8, ::1/128"
    assert NetworkPolicy().describe() == "nothing"
    assert PUBLIC_ONLY.merged(ONE_LAN_HOST).allows("192.168.1.20")


def fake_resolver(monkeypatch, answers):
    """The outside world's DNS: each lookup answers the next list of addresses."""
    seq = iter(answers)

    def getaddrinfo(host, port, *a, **kw):
        out = []
        for ip in next(seq):
            fam = socket.AF_INET6 if ":" in ip else socket.AF_INET
            out.append((fam, socket.SOCK_STREAM, 6, "", (ip, port)))
        return out

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)


def test_only_allowed_addresses_are_kept_and_each_lookup_is_checked(monkeypatch):
    # A rebinding name: public at the first lookup, metadata/loopback at the next.
    fake_resolver(monkeypatch, [["93.184.216.34"], ["169.254.169.254", "127.0.0.1"], ["127.0.0.1", "93.184.216.34"]])
    assert allowed_addresses("rebind.example", 80, PUBLIC_ONLY) == [ipaddress.ip_address("93.184.216.34")]
    with pytest.raises(AddressRefused):
        allowed_addresses("rebind.example", 80, PUBLIC_ONLY)
    assert allowed_addresses("rebind.example", 80, PUBLIC_ONLY) == [ipaddress.ip_address("93.184.216.34")]
