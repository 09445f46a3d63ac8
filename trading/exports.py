"""CSV of each books tab: plain figures (money always with two decimals, rounded as on screen),
instants as full IST datetimes ("2026-12-02 10:32:29", brokers' bare times given their date),
statuses as the page words them and why an order failed; every row the filters match (the page
shows the newest 200 orders; the CSV holds all of them).

Every text cell is made safe for a spreadsheet (safe_cell): account names are the user's text and
broker-copied rows (strategy tags, order ids, reject reasons) the outside world's."""

from __future__ import annotations

import csv
import re

from django.http import HttpResponse

from core.money import plain
from core.timefmt import ist_csv

COLUMNS = {
    "positions": [
        "account",
        "symbol",
        "exchange",
        "product",
        "quantity",
        "average_price",
        "ltp",
        "realized",
        "unrealized",
        "total",
    ],
    "orders": [
        "time_ist",
        "group",
        "account",
        "symbol",
        "exchange",
        "action",
        "quantity",
        "pricetype",
        "price",
        "trigger_price",
        "product",
        "status",
        "reason",
        "broker_orderid",
        "filled",
        "average_price",
        "note",
    ],
    "trades": [
        "account",
        "time_ist",
        "symbol",
        "exchange",
        "product",
        "action",
        "quantity",
        "price",
        "value",
        "orderid",
        "strategy",
    ],
    "holdings": ["account", "symbol", "exchange", "quantity", "average_price", "ltp", "pnl"],
    "funds": ["account", "available_cash", "collateral", "utilised", "m2m", "as_of_ist"],
}


# What Excel, LibreOffice and Google Sheets read as the start of a formula (a tab or CR first lets
# one through after the spreadsheet trims it).
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_NUMBER = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")


def safe_cell(value):
    """A text cell that a spreadsheet would evaluate, shown as text (a leading apostrophe); a
    number, negative money included ("-1561.25"), stays a number."""
    if isinstance(value, str) and value.startswith(FORMULA_START) and not _NUMBER.fullmatch(value):
        return "'" + value
    return value


MONEY = {
    "trades": {"price", "value"},
    "holdings": {"average_price", "ltp", "pnl"},
}


def _positions(rows):
    for r in rows:
        p, res = r["position"], r["pnl"]
        yield [
            p.account.name,
            p.symbol,
            p.exchange,
            p.product,
            p.quantity,
            plain(p.average_price),
            plain(r["ltp"]),
            plain(p.realized),
            plain(res.unrealized) if res else "",
            plain(res.total) if res else "",
        ]


def _orders(orders):
    for o in orders:
        yield [
            ist_csv(o.created_at),
            f"M-{o.batch_id}" if o.batch_id else "",
            o.account.name,
            o.symbol,
            o.exchange,
            o.action,
            o.quantity,
            o.pricetype,
            plain(o.price) if o.price else "",
            plain(o.trigger_price) if o.trigger_price else "",
            o.product,
            o.status_label,
            o.last_error,
            o.broker_orderid or "",
            o.filled_quantity,
            plain(o.average_price) if o.average_price else "",
            o.note,
        ]


def _funds(rows):
    for r in rows:
        yield [
            r["account"].name,
            plain(r["cash"]),
            plain(r["collateral"]),
            plain(r["used"]),
            plain(r["m2m"]),
            ist_csv(r["at"]),
        ]


def _cell(tab: str, column: str, row: dict):
    """A broker-copied row's cell (broker_book_rows): money to two decimals, the instant the
    selector read from the broker's timestamp (its own text when it had none we could read)."""
    if column == "time_ist":
        return ist_csv(row.get("at")) or row.get("time", "")
    if column in MONEY[tab]:
        return plain(row.get(column))
    return row.get(column, "")


def books_csv(tab: str, data) -> HttpResponse:
    """`data` is what the tab's selector returned: positions_page rows, order_list orders,
    broker_book_rows rows (trades, holdings) or funds_rows rows."""
    if tab == "positions":
        rows = _positions(data)
    elif tab == "orders":
        rows = _orders(data)
    elif tab == "funds":
        rows = _funds(data)
    else:
        rows = ([_cell(tab, c, r) for c in COLUMNS[tab]] for r in data)
    resp = HttpResponse(content_type="text/csv")
    resp["Content-Disposition"] = f'attachment; filename="algomirror-{tab}.csv"'
    w = csv.writer(resp)
    w.writerow(COLUMNS[tab])
    w.writerows([safe_cell(c) for c in row] for row in rows)
    return resp
