"""Faults a test can arm on an instance through /_sim/fault, and the feed's price faults.

Pure data and rules (no aiohttp): which kinds exist, when in a request each one acts, how a
request for a fault is validated and how armed faults are used up. The gate applies them.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Container
from dataclasses import dataclass
from typing import Any


class FaultKind(enum.StrEnum):
    """The values are the wire names accepted by /_sim/fault and shown in /_sim/status."""

    LATENCY = "latency"  # sleep `value` ms, then serve normally
    STATUS = "status"  # answer with HTTP status `value` instead of executing
    HANG = "hang"  # hold the request `value` s, then close the connection
    RESET = "reset"  # reset the TCP connection before executing
    DROP_AFTER_EXECUTE = "drop_after_execute"  # execute, then reset instead of answering
    MALFORMED = "malformed"  # execute, then answer with truncated JSON
    REJECT = "reject"  # the order is rejected by the "broker" (reason `value`)
    PARTIAL_FILL = "partial_fill"  # fill at most a `value` fraction of the order
    LATE_AVERAGE_PRICE = "late_average_price"  # orderstatus hides average_price for `value` reads
    LATE_EXECUTE = "late_execute"  # reset the connection at once, execute the request `value` s later
    POSITIONBOOK_LAG = "positionbook_lag"  # positionbook shows positions as of `value` s ago
    NO_ORDERID = "no_orderid"  # execute, answer 200 {"status": "success"} without the orderid
    NO_STATUS = "no_status"  # execute, answer 200 `{}` (or an empty body when `value` is "empty")
    ORDERBOOK_OMITS = "orderbook_omits"  # orderbook leaves out orders placed after the fault was armed
    # The order rests in the broker's transient state (Kite OPEN PENDING / AMO REQ RECEIVED) for
    # `value` reads of the books, unmatched meanwhile; on Zerodha it reads as the row before it.
    PENDING_READS = "pending_reads"


# When each kind acts. Before: on the request, ahead of parsing. Execution: handed to the
# engine with the order. After: on the response, once the handler has run.
BEFORE = frozenset({FaultKind.LATENCY, FaultKind.STATUS, FaultKind.HANG, FaultKind.RESET})
AFTER = frozenset({FaultKind.DROP_AFTER_EXECUTE, FaultKind.MALFORMED, FaultKind.NO_ORDERID, FaultKind.NO_STATUS})
# Deferred: the request is validated, the connection reset, and the handler run later.
DEFERRED = frozenset({FaultKind.LATE_EXECUTE})
EXECUTION = frozenset(FaultKind) - BEFORE - AFTER - DEFERRED
KIND_NAMES = frozenset(k.value for k in FaultKind)

# The statuses a real OpenAlgo (or the proxy in front of it) is seen to answer with.
FAULT_STATUSES = (500, 502, 503, 504, 429, 403)
# The longest delay late_execute and positionbook_lag take: the engine keeps this much history.
MAX_DELAY_S = 600.0
ANY_ENDPOINT = "*"


class PriceFault(enum.StrEnum):
    """Bad prices the WebSocket feed can be told to send (/_sim/ws zero_prices, nan_prices)."""

    ZERO = "zero"
    NAN = "nan"


@dataclass
class Fault:
    endpoint: str
    kind: FaultKind
    value: Any = None
    count: int | None = None  # uses left; None = until cleared
    # What the book held when the fault was armed (orderbook_omits: the orderids then known),
    # set by whoever arms it; not part of the wire form.
    known: frozenset[str] = frozenset()

    def to_json(self) -> dict:
        return {"endpoint": self.endpoint, "kind": self.kind.value, "value": self.value, "count": self.count}

    def for_engine(self) -> dict:
        """The shape handlers and `Account.place(fault=...)` take."""
        out = {"kind": self.kind, "value": self.value}
        if self.kind == FaultKind.ORDERBOOK_OMITS:
            out["known"] = self.known
        return out


@dataclass
class Armed:
    """The faults one request drew, sorted by when they act (see BEFORE/EXECUTION/AFTER)."""

    before: list[Fault]
    execution: Fault | None = None
    after: Fault | None = None
    deferred: Fault | None = None


class BadFault(ValueError):
    """A /_sim/fault request that is refused; the message is the 400's."""


def parse_fault(d: dict, endpoints: Container[str]) -> Fault:
    kind = d.get("kind")
    if kind not in KIND_NAMES:
        raise BadFault(f"kind must be one of {sorted(KIND_NAMES)}")
    endpoint = str(d.get("endpoint") or ANY_ENDPOINT)
    if endpoint != ANY_ENDPOINT and endpoint not in endpoints:
        raise BadFault(f"unknown endpoint {endpoint}")
    count = d.get("count")
    if count is not None and (not isinstance(count, int) or count < 1):
        raise BadFault("count must be a positive integer")
    value = d.get("value")
    if kind == FaultKind.STATUS and _int(value or 500) not in FAULT_STATUSES:
        raise BadFault(f"status must be one of {', '.join(map(str, FAULT_STATUSES))}")
    if kind in (FaultKind.LATE_EXECUTE, FaultKind.POSITIONBOOK_LAG):
        seconds = _number(value)
        if seconds is None or not 0 <= seconds <= MAX_DELAY_S:
            raise BadFault(f"{kind} value must be a number of seconds from 0 to {MAX_DELAY_S:g}")
    if kind == FaultKind.PENDING_READS and not (_int(value or 3) or 0) > 0:
        raise BadFault("pending_reads value must be a positive number of reads")
    if kind == FaultKind.NO_STATUS and value not in (None, "empty", "{}"):
        raise BadFault('no_status value must be "empty" (an empty body) or absent ({})')
    return Fault(endpoint, FaultKind(kind), value, count)


def _int(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _number(value: Any) -> float | None:
    """A finite number of seconds (a JSON number or a numeric string), else None."""
    if isinstance(value, bool):
        return None
    try:
        out = float(value)
    except (TypeError, ValueError):
        return None
    return out if math.isfinite(out) else None


def take(faults: list[Fault], endpoint: str) -> list[Fault]:
    """The faults armed for `endpoint` (or every endpoint), each using up one of its count;
    used-up faults leave `faults`."""
    hit = []
    for f in list(faults):
        if f.endpoint in (endpoint, ANY_ENDPOINT):
            hit.append(f)
            if f.count is not None:
                f.count -= 1
                if f.count <= 0:
                    faults.remove(f)
    return hit


def arm(faults: list[Fault], endpoint: str) -> Armed:
    """Take the faults for one request and sort them by when they act. Before-faults keep
    their arming order (a latency armed ahead of a status fault delays it); of the others,
    the last armed of each group wins."""
    armed = Armed(before=[])
    for f in take(faults, endpoint):
        if f.kind in BEFORE:
            armed.before.append(f)
        elif f.kind in AFTER:
            armed.after = f
        elif f.kind in DEFERRED:
            armed.deferred = f
        else:
            armed.execution = f
    return armed
