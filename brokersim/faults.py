"""Faults a test can arm on an instance through /_sim/fault, and the feed's price faults.

Pure data and rules (no aiohttp): which kinds exist, when in a request each one acts, how a
request for a fault is validated and how armed faults are used up. The gate applies them.
"""

from __future__ import annotations

import enum
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


# When each kind acts. Before: on the request, ahead of parsing. Execution: handed to the
# engine with the order. After: on the response, once the handler has run.
BEFORE = frozenset({FaultKind.LATENCY, FaultKind.STATUS, FaultKind.HANG, FaultKind.RESET})
AFTER = frozenset({FaultKind.DROP_AFTER_EXECUTE, FaultKind.MALFORMED})
EXECUTION = frozenset(FaultKind) - BEFORE - AFTER
KIND_NAMES = frozenset(k.value for k in FaultKind)

# The statuses a real OpenAlgo (or the proxy in front of it) is seen to answer with.
FAULT_STATUSES = (500, 502, 503, 504, 429, 403)
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

    def to_json(self) -> dict:
        return {"endpoint": self.endpoint, "kind": self.kind.value, "value": self.value, "count": self.count}

    def for_engine(self) -> dict:
        """The shape `Account.place(fault=...)` takes."""
        return {"kind": self.kind, "value": self.value}


@dataclass
class Armed:
    """The faults one request drew, sorted by when they act (see BEFORE/EXECUTION/AFTER)."""

    before: list[Fault]
    execution: Fault | None = None
    after: FaultKind | None = None


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
    if kind == FaultKind.STATUS and int(d.get("value") or 500) not in FAULT_STATUSES:
        raise BadFault(f"status must be one of {', '.join(map(str, FAULT_STATUSES))}")
    return Fault(endpoint, FaultKind(kind), d.get("value"), count)


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
            armed.after = f.kind
        else:
            armed.execution = f
    return armed
