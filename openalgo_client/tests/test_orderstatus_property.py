"""The vocabulary's property stated with hypothesis (runs where hypothesis is installed;
test_orderstatus.py checks the same over seeded random strings everywhere)."""

import pytest

hypothesis = pytest.importorskip("hypothesis")
st = pytest.importorskip("hypothesis.strategies")

from openalgo_client import orderstatus as s  # noqa: E402


@hypothesis.given(st.text(max_size=40))
def test_no_string_maps_to_a_terminal_status_unless_listed(text):
    kind = s.classify(text)
    if s.is_terminal(kind):
        assert s.VOCABULARY[s._key(text)] is kind
    else:
        assert kind in (s.Kind.LIVE, s.Kind.UNRECOGNISED)


@hypothesis.given(st.sampled_from(sorted(s.VOCABULARY)), st.text(alphabet=" _-", max_size=3))
def test_separators_and_case_never_change_a_listed_word(word, sep):
    spaced = sep.join(word).upper()
    assert s.classify(spaced) is s.VOCABULARY[word]
