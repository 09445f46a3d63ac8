"""Broker profiles: how a real OpenAlgo server in front of a given broker answers differently
from the clean paper broker (see openalgo-protocol.md, "where real servers differ").

OpenAlgo maps each broker's answers through per-broker code, and that code leaks: Zerodha's
status mapping carries the previous row's status over unknown Kite states, Dhan and XTS pass
their own status words through, Angel answers a failed book read with an empty book, a dead
broker token still answers ping, and a semi-auto key queues orders for a human instead of
placing them; Zerodha counts MCX in contracts where the others count units. A profile is
chosen per instance (CLI `--profile`/`--profiles`, or `POST /_sim/profile`); `clean` changes
nothing.

The rules are small functions applied at three points: `intercept` before a handler runs (the
gate's execute), `error_as_empty` where the gate answers a broker error, and `shape_orders`/
`order_status` where the books render orders.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from .engine import CANCELLED, COMPLETE, OPEN, REJECTED, TRIGGER_PENDING, Order
from .handlers.reply import Reply, err

BOOKS = frozenset({"orderbook", "tradebook", "positionbook", "holdings"})
# Routes that place orders: queued for approval in semi-auto mode.
PLACERS = frozenset({"placeorder", "placesmartorder", "splitorder", "basketorder", "optionsorder"})
# Routes semi-auto mode refuses outright (the name is what its 403 message calls the action).
SEMI_AUTO_BLOCKED = {
    "modifyorder": "Modify order",
    "cancelorder": "Cancel order",
    "cancelallorder": "Cancel all orders",
    "closeposition": "Close position",
}
ORDER_ROUTES = PLACERS | SEMI_AUTO_BLOCKED.keys()
EMPTY_BOOK = {"status": "success", "data": []}
# Kite's answer to a request signed with a dead access token, passed through by OpenAlgo.
DEAD_TOKEN_ERROR = (403, {"status": "error", "message": "Incorrect `api_key` or `access_token`."})
BOOK_FAILURE = {"status": "error", "message": "An unexpected error occurred"}

# A row's status text, from the order and whether this is its first read (a broker shows a
# just-placed live order in a transient state before it settles).
StatusText = Callable[[Order, bool], str]


# ---------------------------------------------------------------------- status texts
# The only Kite states OpenAlgo's Zerodha mapping knows.
KITE_MAPPED = {
    "COMPLETE": COMPLETE,
    "REJECTED": REJECTED,
    "CANCELLED": CANCELLED,
    "OPEN": OPEN,
    "TRIGGER PENDING": TRIGGER_PENDING,
}


def kite_text(o: Order, first_read: bool) -> str:
    if first_read and o.status == OPEN:
        return "OPEN PENDING"
    if first_read and o.status == TRIGGER_PENDING:
        return "VALIDATION PENDING"
    return o.status.upper()


def kite_carry_over(texts: list[str]) -> list[str]:
    """OpenAlgo's Zerodha mapping, bug included: a state it does not know keeps the mapped
    status of the row before it, and on the first row (nothing before) it raises → HTTP 500."""
    out: list[str] = []
    for text in texts:
        mapped = KITE_MAPPED.get(text)
        if mapped is None:
            if not out:
                raise Reply(500, BOOK_FAILURE)
            mapped = out[-1]
        out.append(mapped)
    return out


def dhan_text(o: Order, first_read: bool) -> str:
    if o.expired:
        return "EXPIRED"  # Dhan's own word for a day order the close cancelled
    if o.status in (COMPLETE, CANCELLED, REJECTED):
        return {COMPLETE: "TRADED", CANCELLED: "CANCELLED", REJECTED: "REJECTED"}[o.status]
    if first_read:
        return "TRANSIT"
    if o.filled_quantity:
        return "PART_TRADED"
    if o.status == OPEN and o.pricetype == "SL":
        return "TRIGGERED"  # an SL whose trigger was hit, resting as a limit
    return "PENDING"


def xts_text(o: Order, first_read: bool) -> str:
    if o.status in (COMPLETE, CANCELLED, REJECTED):
        return {COMPLETE: "Filled", CANCELLED: "Cancelled", REJECTED: "Rejected"}[o.status]
    if first_read:
        return "PendingNew"
    if o.filled_quantity:
        return "PartiallyFilled"
    return "Replaced" if o.modified else "New"


# ---------------------------------------------------------------------- profiles
@dataclass(frozen=True)
class Profile:
    name: str
    broker: str | None = None  # the broker name ping and the feed report; None keeps the dealt one
    live: bool = False  # a real broker's quirks: the instance answers in the live wire profile
    status_text: StatusText | None = None  # None: brokersim's own status words
    carry_over: bool = False  # Zerodha's mapping bug over the status texts
    strategy_field: bool = True  # Zerodha's tag is a constant: rows carry no strategy
    errors_as_empty: bool = False  # a failed book read answers as an empty book
    dead_token: bool = False  # ping works, everything the broker answers is empty or refused
    semi_auto: bool = False  # orders wait for approval in the Action Center
    contracts_on: frozenset[str] = frozenset()  # exchanges counted in contracts (lot size 1), not units


CLEAN = Profile("clean")
PROFILES: dict[str, Profile] = {
    p.name: p
    for p in (
        CLEAN,
        Profile(
            "zerodha",
            "zerodha",
            True,
            kite_text,
            carry_over=True,
            strategy_field=False,
            contracts_on=frozenset({"MCX"}),
        ),
        Profile("dhan", "dhan", True, dhan_text),
        Profile("xts", "iifl", True, xts_text),
        Profile("angel", "angel", True, errors_as_empty=True),
        Profile("dead_token", dead_token=True),
        Profile("semi_auto", semi_auto=True),
    )
}


@dataclass
class ProfileState:
    """What an instance's profile remembers between requests."""

    seen: set[str] = field(default_factory=set)  # orders already read once (no longer transient)
    queued: dict[int, tuple[str, dict]] = field(default_factory=dict)  # semi-auto: id -> (route, body)
    next_pending: int = 1


def get(name: str) -> Profile:
    try:
        return PROFILES[name]
    except KeyError:
        raise ValueError(f"unknown profile {name!r}; profiles are {', '.join(PROFILES)}") from None


# ---------------------------------------------------------------------- 1. before the handler
def intercept(profile: Profile, state: ProfileState, endpoint: str, data: dict) -> tuple[int, Any] | None:
    """The answer the profile gives instead of running the handler, or None to run it."""
    if profile.dead_token:
        if endpoint == "funds":
            return 200, {"status": "success", "data": {}}
        if endpoint in BOOKS:
            return 200, dict(EMPTY_BOOK)
        if endpoint in ORDER_ROUTES:
            return DEAD_TOKEN_ERROR
    if profile.semi_auto:
        if endpoint in PLACERS:
            n = state.next_pending
            state.next_pending += 1
            state.queued[n] = (endpoint, data)
            return 200, {
                "status": "success",
                "message": "Order queued for approval in Action Center",
                "mode": "semi_auto",
                "pending_order_id": n,
            }
        if endpoint in SEMI_AUTO_BLOCKED:
            what = SEMI_AUTO_BLOCKED[endpoint]
            message = f"{what} is not allowed in Semi-Auto mode. Use the Action Center or switch to Auto mode."
            return 403, {"status": "error", "message": message}
    return None


# ---------------------------------------------------------------------- 2. broker errors
def error_as_empty(profile: Profile, endpoint: str) -> dict | None:
    """The 200 body that replaces a broker error (a 500, an expired session) on a book read."""
    if profile.errors_as_empty and endpoint in BOOKS:
        return dict(EMPTY_BOOK)
    return None


# ---------------------------------------------------------------------- 3. order rows
def book_statuses(profile: Profile, state: ProfileState, orders: Iterable[Order]) -> dict[str, str]:
    """The status each order shows in a read of the whole orderbook (`orders` oldest first, as
    the broker lists them). The read settles every transient state it showed."""
    orders = list(orders)
    transient = {o.orderid for o in orders if o.pending_reads > 0}
    for o in orders:
        o.pending_reads = max(o.pending_reads - 1, 0)
    if profile.status_text is None:
        return {o.orderid: o.status for o in orders}
    texts = [profile.status_text(o, o.orderid not in state.seen or o.orderid in transient) for o in orders]
    state.seen.update(o.orderid for o in orders)
    if profile.carry_over:
        texts = kite_carry_over(texts)
    return {o.orderid: t for o, t in zip(orders, texts, strict=True)}


def shape_orders(profile: Profile, state: ProfileState, rows: list[dict], orders: dict[str, Order]) -> None:
    """Rewrite orderbook rows (newest first, as brokersim renders them) in place."""
    if profile.status_text is not None or any(o.pending_reads for o in orders.values()):
        shown = book_statuses(profile, state, (orders[r["orderid"]] for r in reversed(rows)))
        for r in rows:
            r["order_status"] = shown[r["orderid"]]
    if not profile.strategy_field:
        for r in rows:
            r.pop("strategy", None)


def order_status(profile: Profile, state: ProfileState, order: Order, orders: Iterable[Order]) -> str:
    """The status orderstatus shows: OpenAlgo finds the order in the broker's whole orderbook,
    so the rows before it (and their carry-over) count."""
    chronological = sorted(orders, key=lambda o: (o.created, o.orderid))
    return book_statuses(profile, state, chronological)[order.orderid]


def approve(state: ProfileState, pending_order_id: Any) -> tuple[str, dict]:
    """Take a queued order out of the Action Center: its route and body, to be placed now."""
    try:
        return state.queued.pop(int(pending_order_id))
    except (KeyError, TypeError, ValueError):
        raise err(400, f"no pending order {pending_order_id!r}; pending are {sorted(state.queued)}") from None
