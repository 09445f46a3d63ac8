"""A thin typed client for one OpenAlgo server's REST v1 API (Django-free).

Every call returns a `Result` whose `outcome` follows invariant I2:

* ACCEPTED — the server answered 2xx with status "success" (and, for placeorder, an orderid).
* REJECTED — the server proved it did not act: a structured 4xx (validation, key, not
  found, business rule), a 200 with status "error", a 429 on a read, or a connection that
  was never established.
* UNKNOWN — anything after the request may have reached the server and no proof either
  way came back: timeouts, 5xx, dropped connections, unparseable bodies, a 2xx whose status is
  neither "success" nor "error", a placeorder "success" without an orderid, an order queued
  for approval (semi-auto), and a 429 on an order writer (OpenAlgo passes a broker's own 429
  through, so only an orderbook read proves nothing was placed). An order whose outcome is
  UNKNOWN must be reconciled against the broker's books, never blindly re-sent.

The server's address comes from a user: the base URL is normalised (`netpolicy`), endpoints are
joined under it, and with a `policy` every connection goes only to an address that policy allows
(checked at connect time, on the address connected to). A refused URL or address is REJECTED
with Reason.NOT_ALLOWED: nothing was sent.

Reads retry a 429 a few times with a backoff; order writers never do (a retry here would
bypass the caller's per-host order throttle): the 429 goes back to the caller.

The API key travels in the JSON body (OpenAlgo's convention); this module never logs
request bodies, so keys never reach the logs. A client may be given the key itself or a
*key source* (a callable returning it), so a long-lived pooled client need not hold the
plaintext between calls.
"""

from __future__ import annotations

import enum
import functools
import json
import logging
import re
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

import httpcore
import httpx

from . import netpolicy

log = logging.getLogger(__name__)

DEFAULT_TIMEOUT = 10.0
RATE_LIMIT_RETRIES = 3  # reads only: a read changes nothing, so retrying it is always safe
RATE_LIMIT_BACKOFF = (0.25, 0.6, 1.2)  # seconds
INVALID_KEY_TEXT = "Invalid openalgo apikey"
# Endpoints that act on the broker: a 429 is never retried here and is not proof of "not done".
ORDER_WRITERS = frozenset(
    {
        "placeorder",
        "placesmartorder",
        "optionsorder",
        "basketorder",
        "splitorder",
        "modifyorder",
        "cancelorder",
        "cancelallorder",
        "closeposition",
    }
)
# Endpoints whose "success" names the order it placed: without the orderid nothing says which.
ORDER_PLACERS = frozenset({"placeorder"})
APPROVAL_QUEUED = "queued for approval at OpenAlgo"
SEMI_AUTO_TEXT = "semi-auto mode"  # in OpenAlgo's 403: "… is not allowed in Semi-Auto mode …"


class Outcome(enum.StrEnum):
    ACCEPTED = "accepted"
    REJECTED = "rejected"
    UNKNOWN = "unknown"


class Reason(enum.StrEnum):
    OK = "ok"
    VALIDATION = "validation"  # 400: schema or business rule
    AUTH = "auth"  # 403: wrong key, or a valid key whose broker session expired
    NOT_FOUND = "not_found"
    RATE_LIMITED = "rate_limited"
    UNREACHABLE = "unreachable"  # connection refused: the request never left
    TIMEOUT = "timeout"
    BROKEN_CONNECTION = "broken_connection"
    SERVER_ERROR = "server_error"
    BAD_RESPONSE = "bad_response"
    NO_ORDERID = "no_orderid"  # placeorder said success but named no order
    PENDING_APPROVAL = "pending_approval"  # semi-auto mode: queued for a human, no orderid
    # Semi-auto mode refuses modify, cancel, cancel-all and close with a 403: the key is fine,
    # the action is not allowed (reading it as AUTH would report a dead session or a bad key).
    SEMI_AUTO = "semi_auto"
    # The URL is unusable or its address is outside the allowed networks: nothing was sent.
    NOT_ALLOWED = "not_allowed"


@dataclass(frozen=True)
class Result:
    outcome: Outcome
    reason: Reason
    status_code: int | None = None
    body: dict[str, Any] = field(default_factory=dict)
    message: str = ""
    latency_ms: float = 0.0

    @property
    def ok(self) -> bool:
        return self.outcome is Outcome.ACCEPTED

    @property
    def data(self) -> Any:
        return self.body.get("data")

    @property
    def shows_semi_auto(self) -> bool:
        """The reply proves the key is in semi-auto mode (an order queued for approval, or an
        action refused because of that mode)."""
        return self.reason in (Reason.PENDING_APPROVAL, Reason.SEMI_AUTO)


def error_message(body: Any) -> str:
    """OpenAlgo errors carry `message` as a string (order writers: a Python repr of the
    validation dict) or as a JSON object (read endpoints); flatten both to one line."""
    if not isinstance(body, dict):
        return str(body)[:300]
    msg = body.get("message", "")
    if isinstance(msg, dict):
        return "; ".join(f"{k}: {', '.join(map(str, v)) if isinstance(v, list) else v}" for k, v in msg.items())
    return str(msg)[:300]


_REJECT_REASONS = {400: Reason.VALIDATION, 401: Reason.AUTH, 403: Reason.AUTH, 404: Reason.NOT_FOUND}


def classify(endpoint: str, code: int, parsed: Any, latency_ms: float = 0.0) -> Result:
    """The outcome class (I2) of one answered request: `parsed` is the JSON body, or None when
    the body was not JSON. Pure: the table of cases is tested without a server."""
    if code == 429:
        if endpoint in ORDER_WRITERS:
            return Result(
                Outcome.UNKNOWN, Reason.RATE_LIMITED, code, message="rate limited (429)", latency_ms=latency_ms
            )
        return Result(Outcome.REJECTED, Reason.RATE_LIMITED, code, message="rate limited", latency_ms=latency_ms)
    if code >= 500 or not isinstance(parsed, dict):
        reason = Reason.SERVER_ERROR if code >= 500 else Reason.BAD_RESPONSE
        msg = error_message(parsed) if isinstance(parsed, dict) else f"HTTP {code}, unreadable body"
        return Result(Outcome.UNKNOWN, reason, code, message=msg, latency_ms=latency_ms)
    if 400 <= code < 500:
        reason = _REJECT_REASONS.get(code, Reason.VALIDATION)
        if code == 403 and SEMI_AUTO_TEXT in error_message(parsed).lower():
            reason = Reason.SEMI_AUTO
        return Result(Outcome.REJECTED, reason, code, parsed, error_message(parsed), latency_ms)
    status = parsed.get("status")
    if not 200 <= code < 300 or status not in ("success", "error"):
        # The server may well have acted (OpenAlgo answers 200 once the broker call is made): a
        # body that says neither "success" nor "error" proves nothing either way.
        return Result(Outcome.UNKNOWN, Reason.BAD_RESPONSE, code, parsed, f"HTTP {code} without a status", latency_ms)
    if status == "error":
        return Result(Outcome.REJECTED, Reason.VALIDATION, code, parsed, error_message(parsed), latency_ms)
    if parsed.get("mode") == "semi_auto" and "orderid" not in parsed:
        pending = parsed.get("pending_order_id")
        msg = APPROVAL_QUEUED + (f" (pending order {pending})" if pending else "")
        return Result(Outcome.UNKNOWN, Reason.PENDING_APPROVAL, code, parsed, msg, latency_ms)
    if endpoint in ORDER_PLACERS and not parsed.get("orderid"):
        msg = "success without an orderid"
        return Result(Outcome.UNKNOWN, Reason.NO_ORDERID, code, parsed, msg, latency_ms)
    return Result(Outcome.ACCEPTED, Reason.OK, code, parsed, latency_ms=latency_ms)


def to_decimal(value: Any, default: Decimal | None = Decimal("0")) -> Decimal | None:
    """Coerce OpenAlgo's numbers-or-strings ("320.66", 320.66, "", None) to Decimal."""
    if value is None or value == "":
        return default
    try:
        d = Decimal(str(value))
    except (InvalidOperation, ValueError):
        return default
    return d if d.is_finite() else default


@dataclass(frozen=True)
class Funds:
    available_cash: Decimal
    collateral: Decimal
    m2m_realized: Decimal
    m2m_unrealized: Decimal
    utilised: Decimal

    @classmethod
    def parse(cls, data: dict) -> Funds:
        return cls(
            *(
                to_decimal(data.get(k))
                for k in ("availablecash", "collateral", "m2mrealized", "m2munrealized", "utiliseddebits")
            )
        )

    def as_json(self) -> dict[str, str]:
        return {
            "available_cash": str(self.available_cash),
            "collateral": str(self.collateral),
            "m2m_realized": str(self.m2m_realized),
            "m2m_unrealized": str(self.m2m_unrealized),
            "utilised": str(self.utilised),
        }


@functools.cache
def _tls() -> ssl.SSLContext:
    """One verifying TLS context for every client: building one loads the CA bundle (~15 ms of
    CPU), which per client was a third of a 50-account fan-out's time."""
    return ssl.create_default_context()


KeySource = Callable[[], str]


def key_source(api_key: str | KeySource) -> KeySource:
    return api_key if callable(api_key) else (lambda: api_key)


Policy = netpolicy.NetworkPolicy | netpolicy.PolicySource
_ENDPOINT = re.compile(r"^[a-z]+(/[a-z]+)*$")
_LIMITS = httpx.Limits(max_connections=10, max_keepalive_connections=5)


class _Refused(httpcore.ConnectError):
    """The connect-time address check refused every address: no connection was opened."""


class _CheckedBackend(httpcore.SyncBackend):
    """httpcore's own socket backend, except that it resolves the host itself, keeps only the
    addresses the policy allows and connects to one of those (never to the name again)."""

    def __init__(self, policy: Policy) -> None:
        self._policy = policy if callable(policy) else (lambda: policy)

    def connect_tcp(self, host, port, timeout=None, local_address=None, socket_options=None):
        try:
            addresses = netpolicy.allowed_addresses(host, port, self._policy())
        except netpolicy.AddressRefused as e:
            raise _Refused(str(e)) from None
        except OSError as e:  # the name did not resolve
            raise httpcore.ConnectError(type(e).__name__) from None
        last: Exception | None = None
        for ip in addresses:
            try:
                # TLS still verifies the certificate against the URL's host name (httpcore passes
                # the origin's host as server_hostname, not the address).
                return super().connect_tcp(str(ip), port, timeout, local_address, socket_options)
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as e:
                last = e
        raise last  # type: ignore[misc]


def _checked_transport(policy: Policy) -> httpx.HTTPTransport:
    transport = httpx.HTTPTransport(verify=_tls(), limits=_LIMITS, trust_env=False)
    # httpx takes no network backend, so its pool is rebuilt with the same settings and ours;
    # test_client_addresses.py proves the check runs (a refused address is never connected to).
    transport._pool = httpcore.ConnectionPool(
        ssl_context=_tls(),
        max_connections=_LIMITS.max_connections,
        max_keepalive_connections=_LIMITS.max_keepalive_connections,
        keepalive_expiry=_LIMITS.keepalive_expiry,
        network_backend=_CheckedBackend(policy),
    )
    return transport


class OpenAlgoClient:
    """One pooled HTTP client per OpenAlgo server. Thread-safe (httpx.Client is).

    `policy` (a NetworkPolicy, or a callable returning the current one) is checked at every new
    connection; without it any address is reached (brokersim's own tests and benches). The
    Django side always passes one."""

    def __init__(
        self,
        host: str,
        api_key: str | KeySource,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        transport: httpx.BaseTransport | None = None,
        policy: Policy | None = None,
    ) -> None:
        self.host = host.rstrip("/")
        self._api_key = key_source(api_key)
        try:
            base = netpolicy.normalise_base_url(host)
            self._refused = ""
        except netpolicy.UrlRejected as e:
            base, self._refused = "http://refused.invalid", str(e)
        if transport is None and policy is not None:
            transport = _checked_transport(policy)
        try:
            httpx.URL(base)
        except httpx.InvalidURL:  # a stored URL from before today's checks: refused, never a crash
            base, self._refused = "http://refused.invalid", "The URL is not valid."
        self._http = httpx.Client(
            base_url=f"{base}/api/v1/",
            timeout=timeout,
            transport=transport,
            limits=_LIMITS,
            verify=_tls(),
            headers={"content-type": "application/json"},
            follow_redirects=False,  # a redirect would go to an address nobody checked
        )

    def __repr__(self) -> str:  # never show the key
        return f"OpenAlgoClient({self.host})"

    def close(self) -> None:
        self._http.close()

    # ------------------------------------------------------------------ transport
    def call(self, endpoint: str, **payload: Any) -> Result:
        if not _ENDPOINT.match(endpoint):
            raise ValueError(f"not an OpenAlgo endpoint: {endpoint!r}")
        if self._refused:
            return Result(Outcome.REJECTED, Reason.NOT_ALLOWED, message=self._refused)
        body = {"apikey": self._api_key(), **payload}
        retries = 0 if endpoint in ORDER_WRITERS else RATE_LIMIT_RETRIES
        for attempt in range(retries + 1):
            result = self._once(endpoint, body)
            if result.reason is not Reason.RATE_LIMITED or attempt == retries:
                return result
            time.sleep(RATE_LIMIT_BACKOFF[min(attempt, len(RATE_LIMIT_BACKOFF) - 1)])
        return result  # pragma: no cover

    def _once(self, endpoint: str, body: dict) -> Result:
        start = time.perf_counter()
        try:
            resp = self._http.post(endpoint, content=json.dumps(body))
        except httpx.ConnectError as e:
            if isinstance(e.__cause__, _Refused):
                return Result(Outcome.REJECTED, Reason.NOT_ALLOWED, message=netpolicy.REFUSED_TEXT)
            return Result(Outcome.REJECTED, Reason.UNREACHABLE, message=f"cannot connect: {type(e).__name__}")
        except httpx.TimeoutException:
            return Result(Outcome.UNKNOWN, Reason.TIMEOUT, message="no answer within the timeout")
        except httpx.TransportError as e:
            return Result(Outcome.UNKNOWN, Reason.BROKEN_CONNECTION, message=f"connection broke: {type(e).__name__}")
        latency = (time.perf_counter() - start) * 1000
        try:
            parsed = resp.json()
        except ValueError:
            parsed = None
        return classify(endpoint, resp.status_code, parsed, latency)

    # ------------------------------------------------------------------ account
    def ping(self) -> Result:
        return self.call("ping")

    def key_is_valid(self) -> bool:
        """`search` needs only a valid key, not a broker session: ping 403 + search 200 means
        the key is right and the broker session has expired."""
        return self.call("search", query="NIFTY", exchange="NSE_INDEX").ok

    def funds(self) -> Result:
        return self.call("funds")

    def orderbook(self) -> Result:
        return self.call("orderbook")

    def tradebook(self) -> Result:
        return self.call("tradebook")

    def positionbook(self) -> Result:
        return self.call("positionbook")

    def holdings(self) -> Result:
        return self.call("holdings")

    # ------------------------------------------------------------------ orders
    def placeorder(
        self,
        *,
        strategy: str,
        symbol: str,
        exchange: str,
        action: str,
        quantity: int,
        pricetype: str = "MARKET",
        product: str = "MIS",
        price: Decimal | float = 0,
        trigger_price: Decimal | float = 0,
    ) -> Result:
        return self.call(
            "placeorder",
            strategy=strategy,
            symbol=symbol,
            exchange=exchange,
            action=action,
            quantity=str(quantity),
            pricetype=pricetype,
            product=product,
            price=str(price),
            trigger_price=str(trigger_price),
        )

    def orderstatus(self, *, orderid: str, strategy: str) -> Result:
        return self.call("orderstatus", orderid=orderid, strategy=strategy)

    def cancelorder(self, *, orderid: str, strategy: str) -> Result:
        return self.call("cancelorder", orderid=orderid, strategy=strategy)

    def modifyorder(
        self,
        *,
        orderid: str,
        strategy: str,
        symbol: str,
        exchange: str,
        action: str,
        product: str,
        pricetype: str,
        quantity: int,
        price: Decimal | float = 0,
        trigger_price: Decimal | float = 0,
    ) -> Result:
        # OpenAlgo requires every field on modify, unused ones as 0.
        return self.call(
            "modifyorder",
            orderid=orderid,
            strategy=strategy,
            symbol=symbol,
            exchange=exchange,
            action=action,
            product=product,
            pricetype=pricetype,
            quantity=str(quantity),
            price=str(price),
            trigger_price=str(trigger_price),
            disclosed_quantity="0",
        )

    def cancelallorder(self, *, strategy: str) -> Result:
        return self.call("cancelallorder", strategy=strategy)

    # ------------------------------------------------------------------ market data
    def quotes(self, *, symbol: str, exchange: str) -> Result:
        return self.call("quotes", symbol=symbol, exchange=exchange)
