"""Where the server may send an OpenAlgo request: URL normalisation and the address policy.

Django-free. Any logged-in user types the URL this server then connects to (the connection
test, the account, the health check every 30 s), so two things are checked:

* The URL, once, when it is typed and again when a client is built (`normalise_base_url`,
  `normalise_ws_url`): http(s) or ws(s) only, a host, no credentials, no query, no fragment, a
  plain path. A query in the "host" would otherwise take over the path our client appends.
* The address, every time a connection is opened (`allowed_addresses`, used by the REST
  transport and the WebSocket client): the name is resolved, every address it resolves to is
  checked against the administrator's `NetworkPolicy`, and the connection goes to a checked
  address itself, so a name that resolves differently a second later (DNS rebinding) gains
  nothing.

OpenAlgo is often self-hosted on the same machine or the LAN, so private addresses are not
simply blocked: the administrator lists what is allowed. Link-local and cloud-metadata
addresses (169.254.169.254, fe80::/10, …) are never allowed, whatever the list says.
"""

from __future__ import annotations

import ipaddress
import re
import socket
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from urllib.parse import urlsplit

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

# Never a target, whatever the administrator allows: the cloud's metadata and host agents, the
# "this host" and link-local ranges, multicast and reserved space, and IPv6 tunnels whose far end
# (another IPv4 address) no check here can see.
NEVER: tuple[IPNetwork, ...] = tuple(
    ipaddress.ip_network(n)
    for n in (
        "0.0.0.0/8",  # "this network": 0.0.0.0 reaches the local host on Linux
        "169.254.0.0/16",  # IPv4 link-local: cloud metadata (169.254.169.254) lives here
        "100.100.100.200/32",  # Alibaba Cloud's metadata (inside the shared 100.64/10 range)
        "168.63.129.16/32",  # Azure's host agent, reachable from every VM
        "224.0.0.0/4",  # multicast
        "240.0.0.0/4",  # reserved, and the broadcast address
        "::/128",
        "fe80::/10",  # IPv6 link-local
        "fec0::/10",  # IPv6 site-local (deprecated, link-scoped in practice)
        "ff00::/8",  # IPv6 multicast
        "fd00:ec2::254/128",  # AWS metadata over IPv6
        "2002::/16",  # 6to4
        "2001::/32",  # Teredo
    )
)

# What the keywords in OPENALGO_ALLOWED_NETWORKS (or an admin row) stand for; "public" is every
# globally routable address and has no list.
KEYWORDS: dict[str, tuple[IPNetwork, ...]] = {
    "loopback": (ipaddress.ip_network("127.0.0.0/8"), ipaddress.ip_network("::1/128")),
    "private": tuple(
        ipaddress.ip_network(n) for n in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10", "fc00::/7")
    ),
}
PUBLIC = "public"
_NAT64 = ipaddress.ip_network("64:ff9b::/96")


class UrlRejected(ValueError):
    """The URL cannot name an OpenAlgo server; the text says why, for the person who typed it."""


class AddressRefused(Exception):
    """Every address the host resolved to is outside the allowed networks: nothing was sent."""


REFUSED_TEXT = "This address is not in the networks the administrator allows for OpenAlgo servers."


# ---------------------------------------------------------------- URLs
_HOST_NAME = re.compile(r"^[a-z0-9_]([a-z0-9_-]*[a-z0-9_])?(\.[a-z0-9_]([a-z0-9_-]*[a-z0-9_])?)*\.?$")
_NUMERIC_LABEL = re.compile(r"^(0x[0-9a-f]*|[0-9]+)$")
_PATH = re.compile(r"^(/[A-Za-z0-9._~-]+)*/?$")
_DEFAULT_PORTS = {"http": 80, "https": 443, "ws": 80, "wss": 443}


def normalise_base_url(url: str, *, schemes: tuple[str, ...] = ("http", "https")) -> str:
    """`url` as the one base every request is joined to: `scheme://host[:port][/path]`, scheme
    and host lower-cased, no trailing slash. Raises UrlRejected (a ValueError) for anything
    else: another scheme, credentials, a query or fragment (even an empty one), a percent-escape
    or dot segment in the path, control characters, a bad port."""
    text = url.strip() if isinstance(url, str) else ""
    if not text:
        raise UrlRejected("Enter the server's URL.")
    if any(c.isspace() or ord(c) < 32 or ord(c) == 127 or c == "\\" for c in text):
        raise UrlRejected("The URL contains spaces, control characters or backslashes.")
    if "?" in text or "#" in text:
        raise UrlRejected("The URL must not contain a query (?…) or a fragment (#…).")
    try:
        parts = urlsplit(text)
    except ValueError:  # a bracketed host that is no IPv6 address
        raise UrlRejected("The IPv6 address in brackets is not valid.") from None
    scheme = parts.scheme.lower()
    if scheme not in schemes:
        raise UrlRejected(f"Enter a {' or '.join(s + '://' for s in schemes)} URL.")
    if "@" in parts.netloc:
        raise UrlRejected("The URL must not contain a user name or password.")
    try:
        port = parts.port
    except ValueError:
        raise UrlRejected("The port must be a number from 1 to 65535.") from None
    if port == 0:
        raise UrlRejected("The port must be a number from 1 to 65535.")
    host = _host(parts.hostname or "", bracketed=parts.netloc.startswith("["))
    if not _PATH.match(parts.path) or any(seg in (".", "..") for seg in parts.path.split("/")):
        raise UrlRejected("The URL's path may hold only letters, digits and . _ ~ - between slashes.")
    netloc = host if port is None or port == _DEFAULT_PORTS[scheme] else f"{host}:{port}"
    return f"{scheme}://{netloc}{parts.path.rstrip('/')}"


def normalise_ws_url(url: str) -> str:
    return normalise_base_url(url, schemes=("ws", "wss"))


def _host(hostname: str, *, bracketed: bool) -> str:
    if not hostname:
        raise UrlRejected("The URL has no host.")
    if bracketed:
        try:
            if "%" in hostname:  # a zone id names an interface: link-local, never a target
                raise ValueError(hostname)
            ip = ipaddress.IPv6Address(hostname)
        except ValueError:
            raise UrlRejected("The IPv6 address in brackets is not valid.") from None
        return f"[{ip.compressed}]"
    if not hostname.isascii():
        try:
            hostname = hostname.encode("idna").decode("ascii")
        except UnicodeError:
            raise UrlRejected("The host name is not valid.") from None
    hostname = hostname.lower()
    if not _HOST_NAME.match(hostname) or len(hostname) > 253:
        raise UrlRejected("The host name is not valid.")
    if _NUMERIC_LABEL.match(hostname.rstrip(".").rsplit(".", 1)[-1]):
        # No top-level domain is a number, so this is meant as an IPv4 address. Only the plain
        # dotted quad is taken: 0x7f.1, 2130706433 or 0177.0.0.1 mean 127.0.0.1 to the resolver,
        # other spellings to the HTTP client (which refuses 01.2.3.4 outright), and one server
        # written two ways would look like two.
        try:
            return str(ipaddress.IPv4Address(hostname))
        except ValueError:
            raise UrlRejected("Write an IPv4 address as four numbers 0-255, e.g. 192.168.1.10.") from None
    return hostname


# ---------------------------------------------------------------- addresses
def effective_address(ip: IPAddress) -> IPAddress:
    """The IPv4 address an IPv6 one carries when it does (IPv4-mapped ::ffff:a.b.c.d, the NAT64
    prefix, the old IPv4-compatible ::a.b.c.d): the policy judges where packets really go."""
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return ip.ipv4_mapped
        if ip in _NAT64 or (int(ip) >> 32 == 0 and int(ip) > 1):
            return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return ip


def parse_entry(text: str) -> tuple[bool, tuple[IPNetwork, ...]]:
    """One entry of the allowed list: `public`, `loopback`, `private`, or a network in CIDR
    notation (a bare address is a /32 or /128). Returns (allows public, networks); raises
    ValueError naming the entry."""
    entry = text.strip().lower()
    if entry == PUBLIC:
        return True, ()
    if entry in KEYWORDS:
        return False, KEYWORDS[entry]
    try:
        return False, (ipaddress.ip_network(entry, strict=False),)
    except ValueError:
        raise ValueError(
            f"“{text.strip()}” is not public, loopback, private or a network such as 192.168.1.0/24."
        ) from None


@dataclass(frozen=True)
class NetworkPolicy:
    """Which addresses an OpenAlgo connection may go to: globally routable ones when `public`,
    and any in `networks`; never one in NEVER."""

    public: bool = False
    networks: tuple[IPNetwork, ...] = ()

    @classmethod
    def parse(cls, entries: Iterable[str]) -> NetworkPolicy:
        public, networks = False, []
        for e in entries:
            if not e.strip():
                continue
            p, nets = parse_entry(e)
            public |= p
            networks.extend(n for n in nets if n not in networks)
        return cls(public, tuple(networks))

    def merged(self, other: NetworkPolicy) -> NetworkPolicy:
        extra = tuple(n for n in other.networks if n not in self.networks)
        return NetworkPolicy(self.public or other.public, self.networks + extra)

    def allows(self, ip: IPAddress | str) -> bool:
        ip = effective_address(ipaddress.ip_address(ip))
        if any(ip in n for n in NEVER if n.version == ip.version):
            return False
        if self.public and ip.is_global:
            return True
        return any(ip in n for n in self.networks if n.version == ip.version)

    def describe(self) -> str:
        parts = (["the public internet"] if self.public else []) + [str(n) for n in self.networks]
        return ", ".join(parts) or "nothing"


PolicySource = Callable[[], NetworkPolicy]


def allowed_addresses(host: str, port: int, policy: NetworkPolicy) -> list[IPAddress]:
    """Resolve `host` and keep the addresses `policy` allows, in the resolver's order. Raises
    AddressRefused when it resolved but none is allowed, OSError when it did not resolve. The
    caller connects to these addresses themselves, never to the name again."""
    infos = socket.getaddrinfo(host.strip("[]"), port, type=socket.SOCK_STREAM)
    seen: list[IPAddress] = []
    for _family, _type, _proto, _canon, sockaddr in infos:
        ip = ipaddress.ip_address(str(sockaddr[0]).split("%")[0])
        if ip not in seen:
            seen.append(ip)
    allowed = [ip for ip in seen if policy.allows(ip)]
    if not allowed:
        raise AddressRefused(REFUSED_TEXT)
    return allowed


def connect_checked(host: str, port: int, policy: NetworkPolicy, timeout: float | None) -> socket.socket:
    """A TCP connection to `host` through an address `policy` allows (the first that answers)."""
    last: OSError | None = None
    for ip in allowed_addresses(host, port, policy):
        try:
            return socket.create_connection((str(ip), port), timeout=timeout)
        except OSError as e:
            last = e
    raise last if last is not None else OSError("no address")
