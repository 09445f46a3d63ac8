"""One order-status vocabulary over every broker OpenAlgo fronts (pure).

OpenAlgo normalises five statuses (open, complete, cancelled, rejected, trigger pending), but its
per-broker mappings leak their own words: Zerodha's Kite states (OPEN PENDING, VALIDATION PENDING,
AMO REQ RECEIVED…), Dhan's (TRANSIT, PART_TRADED, TRADED, EXPIRED…), XTS brokers' (PendingNew,
PartiallyFilled, Replaced…), Angel's and Upstox's raw text ("open pending", "after market order
req received"), Fyers' "unknown". Each is mapped here, ignoring case, spaces, underscores and
hyphens, to one of ours:

* LIVE — at the broker and may still fill (every transient or pending state);
* COMPLETE — fully filled;
* CANCELLED — ended with whatever filled so far; the rest will never execute (EXPIRED is the
  broker cancelling the unfilled rest);
* REJECTED — refused by the broker or exchange;
* UNRECOGNISED — a word not listed here. Never terminal: the order is read again (with a growing
  pause, `doubt_backoff`) and the tradebook says what filled.

Only words listed here can end an order; anything else keeps it alive (a hypothesis property
tests it). `classify` is the only entry point that reads broker text.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass


class Kind(enum.StrEnum):
    LIVE = "live"
    COMPLETE = "complete"
    CANCELLED = "cancelled"
    REJECTED = "rejected"
    UNRECOGNISED = "unrecognised"


TERMINAL = frozenset({Kind.COMPLETE, Kind.CANCELLED, Kind.REJECTED})

_LIVE_WORDS = (
    # OpenAlgo's own, and Kotak's (it folds "trigger pending" into "open").
    "open",
    "trigger pending",
    "pending",
    # Zerodha (Kite) states outside the five OpenAlgo maps; Angel and Upstox pass the same
    # exchange-gateway text through in lower case.
    "open pending",
    "validation pending",
    "put order req received",
    "modify validation pending",
    "modify pending",
    "modified",
    "not modified",  # a modify the exchange refused: the order itself rests unchanged
    "cancel pending",
    "not cancelled",  # a cancel the exchange refused: the order is still live
    "amo req received",
    "after market order req received",
    "modify after market order req received",
    # Dhan.
    "transit",
    "triggered",
    "part traded",
    # XTS (IIFL, 5paisa XTS, …).
    "new",
    "pending new",
    "partially filled",
    "replaced",
    "pending replace",
    "pending cancel",
)
_COMPLETE_WORDS = ("complete", "traded", "filled")
_CANCELLED_WORDS = ("cancelled", "canceled", "expired", "cancelled after market order")
_REJECTED_WORDS = ("rejected",)
# Live states that say part of the order has filled (the live wire's orderstatus carries no
# filled quantity, so the tradebook is read for it).
_PARTIAL_WORDS = ("part traded", "partially filled")


def _key(text: object) -> str:
    """The comparison form: lower case, letters and digits only ("PART_TRADED", "Part traded"
    and "PartTraded" are one word)."""
    return re.sub(r"[^0-9a-z]", "", str(text or "").lower())


VOCABULARY: dict[str, Kind] = {
    _key(w): kind
    for words, kind in (
        (_LIVE_WORDS, Kind.LIVE),
        (_COMPLETE_WORDS, Kind.COMPLETE),
        (_CANCELLED_WORDS, Kind.CANCELLED),
        (_REJECTED_WORDS, Kind.REJECTED),
    )
    for w in words
}
_PARTIAL = frozenset(_key(w) for w in _PARTIAL_WORDS)


def classify(text: object) -> Kind:
    """Our status for a broker's status text (UNRECOGNISED for a word not listed, "unknown" and
    an empty status included)."""
    return VOCABULARY.get(_key(text), Kind.UNRECOGNISED)


def is_terminal(kind: Kind) -> bool:
    return kind in TERMINAL


def says_partly_filled(text: object) -> bool:
    """A live status that says part of the order has filled (Dhan PART_TRADED, XTS PartiallyFilled)."""
    return _key(text) in _PARTIAL


# A cancel refused because the order already ended names its end ("Cannot cancel order in
# rejected status", "…already cancelled/completed"); a refusal that says the order is busy
# ("cannot be cancelled as it is being processed. Try later": Kite's OPEN PENDING) proves nothing.
_CANNOT_CANCEL = re.compile(r"\b(cannot|can ?not|can't|could not|unable to|failed to|not able to)\s+(be\s+)?cancel\w*")
_ENDED_WORDS = re.compile(r"\b(rejected|cancell?ed|complete|completed|executed|traded|filled|expired)\b")
_BUSY_WORDS = re.compile(r"process|pending|progress|try (again|later)|in transit|transit|not found|no such")


def cancel_refusal_says_ended(message: object) -> bool:
    """A cancel's refusal that says the order had already ended (rejected, cancelled, filled):
    proof, with the tradebook, that an attempt is dead. Anything else (busy, not found, a reason
    we cannot read) is no proof."""
    text = _CANNOT_CANCEL.sub(" ", str(message or "").lower())
    return bool(_ENDED_WORDS.search(text)) and not _BUSY_WORDS.search(text)


def doubt_backoff(reads: int, *, first: float = 2.0, cap: float = 60.0) -> float:
    """Seconds before an order whose status was doubtful `reads` times in a row is read again:
    doubling from `first`, at most `cap` (an unrecognised status is read on, never forgotten)."""
    return min(cap, first * 2 ** max(reads - 1, 0))


class Step(enum.StrEnum):
    LIVE = "live"  # keep it live; book any fills the read shows
    FINAL = "final"  # settle it in `Verdict.kind`, with the fills known
    CONFIRM = "confirm"  # a terminal word not confirmed yet: read again a little later
    DOUBT = "doubt"  # unrecognised or self-contradicting: read again with a growing pause


@dataclass(frozen=True)
class Verdict:
    """What one status read means for an order."""

    step: Step
    kind: Kind
    why: str = ""


def judge(kind: Kind, *, quantity: int, filled: int, traded: int | None, confirming: bool) -> Verdict:
    """What one read of an order's status means, given what else we know.

    `filled` is the most we know filled (our record or the row); `traded` what the broker's
    tradebook shows for the order (None when it was not or could not be read); `confirming` that
    an earlier read, a little before this one, said the same terminal word.

    No single read ends an order when it contradicts what we know: a "rejected" for an order with
    fills is no rejection; a "rejected" or "cancelled" becomes final only when a second read
    confirms it and the tradebook has been read (what filled before the end is booked); the
    tradebook showing everything filled is COMPLETE whatever the status word says.
    """
    if traded is not None and traded >= quantity:
        return Verdict(Step.FINAL, Kind.COMPLETE, "the tradebook shows it fully filled")
    if kind is Kind.COMPLETE:
        return Verdict(Step.FINAL, Kind.COMPLETE)
    if kind is Kind.LIVE:
        return Verdict(Step.LIVE, Kind.LIVE)
    if kind is Kind.UNRECOGNISED:
        return Verdict(Step.DOUBT, Kind.UNRECOGNISED, "status not recognised: read again, never final")
    if kind is Kind.REJECTED and max(filled, traded or 0) > 0:
        return Verdict(Step.DOUBT, Kind.LIVE, "reads rejected, yet has fills: not a rejection, read again")
    if not confirming:
        return Verdict(Step.CONFIRM, kind, f"reads {kind} once: confirmed by a second read before it is final")
    if traded is None:
        return Verdict(Step.CONFIRM, kind, f"reads {kind}; the tradebook is unreadable: not final until it is")
    return Verdict(Step.FINAL, kind)
