import datetime as dt

import pytest

from brokersim import instruments as ins

TODAY = dt.date(2025, 11, 20)


def test_symbols_are_built_in_openalgo_format():
    assert ins.option_symbol("NIFTY", dt.date(2025, 11, 25), 24000, "CE") == "NIFTY25NOV2524000CE"
    assert ins.option_symbol("VEDL", dt.date(2024, 4, 25), 292.5, "CE") == "VEDL25APR24292.5CE"
    assert ins.future_symbol("BANKNIFTY", dt.date(2025, 11, 25)) == "BANKNIFTY25NOV25FUT"


@pytest.mark.parametrize(
    ("symbol", "exchange", "kind", "lot", "freeze"),
    [
        ("NIFTY", "NSE_INDEX", "index", 1, 0),
        ("RELIANCE", "NSE", "equity", 1, 0),
        ("NIFTY25NOV2524000CE", "NFO", "option", 65, 1800),
        ("BANKNIFTY25NOV2558000PE", "NFO", "option", 30, 600),
        ("SENSEX20NOV2584600CE", "BFO", "option", 20, 1000),
        ("NIFTY25NOV25FUT", "NFO", "future", 65, 1800),
    ],
)
def test_lookup_resolves_listed_instruments(symbol, exchange, kind, lot, freeze):
    inst = ins.lookup(symbol, exchange, TODAY)
    assert inst is not None
    assert (inst.kind, inst.lot_size, inst.freeze_qty) == (kind, lot, freeze)


@pytest.mark.parametrize(
    ("symbol", "exchange"),
    [
        ("NIFTY25NOV2524000CE", "BFO"),  # wrong exchange
        ("NIFTY25NOV2524025CE", "NFO"),  # not on the 50-point grid
        ("NIFTY26NOV2524000CE", "NFO"),  # not an expiry
        ("NIFTY25NOV2524000.0CE", "NFO"),  # strike written with .0
        ("NIFTY", "NSE"),  # index is quoted on NSE_INDEX
        ("ZOMATO", "NSE"),
        ("", "NFO"),
    ],
)
def test_lookup_rejects_unlisted(symbol, exchange):
    assert ins.lookup(symbol, exchange, TODAY) is None


def test_listed_strikes_step_and_span():
    strikes = ins.listed_strikes(ins.UNDERLYINGS["BANKNIFTY"])
    assert len(strikes) == 2 * ins.STRIKES_EACH_SIDE + 1
    assert {b - a for a, b in zip(strikes, strikes[1:], strict=False)} == {100.0}


def test_symbol_info_row():
    row = ins.symbol_info(ins.lookup("NIFTY25NOV2524000CE", "NFO", TODAY))
    assert row["expiry"] == "25-NOV-25"
    assert row["lotsize"] == 65 and row["freeze_qty"] == 1800
    assert row["instrumenttype"] == "CE" and row["strike"] == 24000.0
