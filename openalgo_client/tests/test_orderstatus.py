"""The order-status vocabulary and what one read means (pure, table-driven)."""

import random
import string

import pytest

from openalgo_client import orderstatus as s

K = s.Kind

# Every broker word the protocol's Appendix names, as the broker (or OpenAlgo's mapping) spells it.
WORDS = [
    # OpenAlgo's five
    ("open", K.LIVE),
    ("complete", K.COMPLETE),
    ("cancelled", K.CANCELLED),
    ("rejected", K.REJECTED),
    ("trigger pending", K.LIVE),
    # Zerodha / Kite
    ("OPEN", K.LIVE),
    ("COMPLETE", K.COMPLETE),
    ("CANCELLED", K.CANCELLED),
    ("REJECTED", K.REJECTED),
    ("TRIGGER PENDING", K.LIVE),
    ("OPEN PENDING", K.LIVE),
    ("VALIDATION PENDING", K.LIVE),
    ("PUT ORDER REQ RECEIVED", K.LIVE),
    ("MODIFY VALIDATION PENDING", K.LIVE),
    ("MODIFY PENDING", K.LIVE),
    ("MODIFIED", K.LIVE),
    ("CANCEL PENDING", K.LIVE),
    ("AMO REQ RECEIVED", K.LIVE),
    # Dhan (REST upper case, WebSocket lower case)
    ("TRANSIT", K.LIVE),
    ("PENDING", K.LIVE),
    ("TRIGGERED", K.LIVE),
    ("PART_TRADED", K.LIVE),
    ("part_traded", K.LIVE),
    ("TRADED", K.COMPLETE),
    ("traded", K.COMPLETE),
    ("EXPIRED", K.CANCELLED),
    ("expired", K.CANCELLED),
    # XTS (IIFL, 5paisa XTS…)
    ("New", K.LIVE),
    ("PendingNew", K.LIVE),
    ("PartiallyFilled", K.LIVE),
    ("Replaced", K.LIVE),
    ("PendingReplace", K.LIVE),
    ("PendingCancel", K.LIVE),
    ("Filled", K.COMPLETE),
    ("Cancelled", K.CANCELLED),
    ("Rejected", K.REJECTED),
    # Angel / Upstox raw text
    ("open pending", K.LIVE),
    ("validation pending", K.LIVE),
    ("put order req received", K.LIVE),
    ("after market order req received", K.LIVE),
    ("modify after market order req received", K.LIVE),
    ("not modified", K.LIVE),
    ("not cancelled", K.LIVE),
    ("cancelled after market order", K.CANCELLED),
    # Noren family spells it the American way
    ("CANCELED", K.CANCELLED),
    # Fyers: "unknown" for a code its mapping does not know
    ("unknown", K.UNRECOGNISED),
    # nothing said, or something no broker is known to say
    ("", K.UNRECOGNISED),
    (None, K.UNRECOGNISED),
    ("CLOSED", K.UNRECOGNISED),
    ("LAPSED", K.UNRECOGNISED),
    ("executed", K.UNRECOGNISED),
    ("rejected?", K.REJECTED),  # punctuation is ignored like spaces
]


@pytest.mark.parametrize(("text", "kind"), WORDS)
def test_every_broker_word_has_our_status(text, kind):
    assert s.classify(text) is kind


@pytest.mark.parametrize(
    "variant",
    ["Part Traded", "part-traded", "PART TRADED", " part_traded ", "PartTraded", "pArT__tRaDeD"],
)
def test_case_spaces_and_underscores_do_not_matter(variant):
    assert s.classify(variant) is K.LIVE and s.says_partly_filled(variant)


@pytest.mark.parametrize(
    ("text", "partly"),
    [("PART_TRADED", True), ("PartiallyFilled", True), ("open", False), ("TRANSIT", False), ("TRADED", False)],
)
def test_partly_filled_states(text, partly):
    assert s.says_partly_filled(text) is partly


def test_unrecognised_is_never_terminal():
    assert not s.is_terminal(K.UNRECOGNISED) and not s.is_terminal(K.LIVE)
    assert all(s.is_terminal(k) for k in (K.COMPLETE, K.CANCELLED, K.REJECTED))


def test_no_string_is_terminal_unless_listed():
    """A property, checked over seeded random strings and mutations of the listed words: only a
    word in the vocabulary can end an order. (hypothesis states it too, where it is installed:
    test_orderstatus_property.py.)"""
    rng = random.Random(18)
    listed = set(s.VOCABULARY)
    alphabet = string.ascii_letters + string.digits + " _-?"
    samples = ["".join(rng.choice(alphabet) for _ in range(rng.randint(0, 24))) for _ in range(5000)]
    for word in s.VOCABULARY:
        for _ in range(20):  # a letter dropped, swapped or added: a near miss, not a match
            i = rng.randrange(len(word) + 1)
            samples.append(word[:i] + rng.choice(string.ascii_lowercase) + word[i + 1 :])
            samples.append(word[:i] + rng.choice(string.ascii_lowercase) + word[i:])
    for text in samples:
        kind = s.classify(text)
        key = s._key(text)
        if s.is_terminal(kind):
            assert key in listed and s.VOCABULARY[key] is kind, text
        if key not in listed:
            assert kind is K.UNRECOGNISED, text


@pytest.mark.parametrize(
    ("reads", "seconds"),
    [(0, 2.0), (1, 2.0), (2, 4.0), (3, 8.0), (5, 32.0), (6, 60.0), (40, 60.0)],
)
def test_a_doubtful_status_is_read_again_with_a_growing_pause(reads, seconds):
    assert s.doubt_backoff(reads) == seconds


# judge(kind, quantity, filled, traded, confirming) -> (step, kind)
Q = 10
JUDGED = [
    # a live word keeps it live, whatever filled
    (K.LIVE, 0, None, False, s.Step.LIVE, K.LIVE),
    (K.LIVE, 4, 4, False, s.Step.LIVE, K.LIVE),
    # complete is complete (nothing contradicts it)
    (K.COMPLETE, 0, None, False, s.Step.FINAL, K.COMPLETE),
    # the tradebook showing everything filled wins over any word
    (K.REJECTED, 0, 10, False, s.Step.FINAL, K.COMPLETE),
    (K.UNRECOGNISED, 0, 10, False, s.Step.FINAL, K.COMPLETE),
    (K.CANCELLED, 3, 10, False, s.Step.FINAL, K.COMPLETE),
    # an unrecognised word is read again, never final
    (K.UNRECOGNISED, 0, None, False, s.Step.DOUBT, K.UNRECOGNISED),
    (K.UNRECOGNISED, 0, 0, True, s.Step.DOUBT, K.UNRECOGNISED),
    (K.UNRECOGNISED, 5, 5, True, s.Step.DOUBT, K.UNRECOGNISED),
    # a rejection with fills (ours, or the tradebook's) is no rejection
    (K.REJECTED, 4, None, False, s.Step.DOUBT, K.LIVE),
    (K.REJECTED, 0, 4, True, s.Step.DOUBT, K.LIVE),
    # a first terminal read waits for a second one
    (K.REJECTED, 0, 0, False, s.Step.CONFIRM, K.REJECTED),
    (K.CANCELLED, 0, 0, False, s.Step.CONFIRM, K.CANCELLED),
    (K.CANCELLED, 4, 4, False, s.Step.CONFIRM, K.CANCELLED),
    # confirmed, but the tradebook could not be read: not final until it can
    (K.REJECTED, 0, None, True, s.Step.CONFIRM, K.REJECTED),
    (K.CANCELLED, 4, None, True, s.Step.CONFIRM, K.CANCELLED),
    # confirmed and the tradebook read: final
    (K.REJECTED, 0, 0, True, s.Step.FINAL, K.REJECTED),
    (K.CANCELLED, 0, 0, True, s.Step.FINAL, K.CANCELLED),
    (K.CANCELLED, 4, 4, True, s.Step.FINAL, K.CANCELLED),  # a partial fill, then the rest cancelled
]


@pytest.mark.parametrize(("kind", "filled", "traded", "confirming", "step", "settled"), JUDGED)
def test_what_one_read_means(kind, filled, traded, confirming, step, settled):
    v = s.judge(kind, quantity=Q, filled=filled, traded=traded, confirming=confirming)
    assert (v.step, v.kind) == (step, settled), v.why


def test_only_a_confirmed_read_or_a_full_tradebook_is_final():
    """Over every combination: FINAL needs COMPLETE, a full tradebook, or a confirmed terminal
    word with the tradebook read; REJECTED is never final for an order with fills."""
    for kind in K:
        for filled in (0, 4):
            for traded in (None, 0, 4, 10):
                for confirming in (False, True):
                    v = s.judge(kind, quantity=Q, filled=filled, traded=traded, confirming=confirming)
                    if v.step is s.Step.FINAL:
                        assert (
                            kind is K.COMPLETE
                            or traded == Q
                            or (confirming and traded is not None and s.is_terminal(kind))
                        )
                        if v.kind is K.REJECTED:
                            assert filled == 0 and traded == 0
                    if kind is K.UNRECOGNISED and traded != Q:
                        assert v.step is s.Step.DOUBT
