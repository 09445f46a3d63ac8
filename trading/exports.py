"""CSV of each books tab: plain figures (Decimals rounded to the paisa, times in IST), every row
the filters match (the page shows the newest 200 orders; the CSV holds all of them)."""

from __future__ import annotations

import csv

from django.http import HttpResponse
from django.utils import timezone

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
        "product",
        "status",
        "broker_orderid",
        "filled",
        "average_price",
        "note",
    ],
    "trades": [
        "account",
        "time",
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


def _ist(t) -> str:
    return timezone.localtime(t).strftime("%Y-%m-%d %H:%M:%S") if t else ""


def _blank(value):
    return "" if value is None else value


def _positions(rows):
    for r in rows:
        p, res = r["position"], r["pnl"]
        yield [
            p.account.name,
            p.symbol,
            p.exchange,
            p.product,
            p.quantity,
            round(p.average_price, 2),
            _blank(r["ltp"]),
            round(p.realized, 2),
            round(res.unrealized, 2) if res else "",
            round(res.total, 2) if res else "",
        ]


def _orders(orders):
    for o in orders:
        yield [
            _ist(o.created_at),
            f"M-{o.batch_id}" if o.batch_id else "",
            o.account.name,
            o.symbol,
            o.exchange,
            o.action,
            o.quantity,
            o.pricetype,
            o.product,
            o.status,
            o.broker_orderid or "",
            o.filled_quantity,
            o.average_price or "",
            o.note,
        ]


def _funds(rows):
    for r in rows:
        yield [
            r["account"].name,
            _blank(r["cash"]),
            r["collateral"],
            _blank(r["used"]),
            _blank(r["m2m"]),
            _ist(r["at"]),
        ]


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
        rows = ([r.get(c, "") for c in COLUMNS[tab]] for r in data)
    resp = HttpResponse(content_type="text/csv")
    resp["Content-Disposition"] = f'attachment; filename="algomirror-{tab}.csv"'
    w = csv.writer(resp)
    w.writerow(COLUMNS[tab])
    w.writerows(rows)
    return resp
