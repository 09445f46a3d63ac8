"""Display rows for the trading pages: selectors return data (models, Decimals, PnL), these turn it
into the strings, CSS classes, confirm texts and URLs that a template only prints.

Long tables are pre-formatted here rather than with template filters: 200 rows rendered with
per-cell filters and comparisons took ~100 ms, plain strings take a fraction of that. The books
page's script recomputes the live figures from the raw numbers each row also carries (`raw_*`),
with the same rules as `pnl.py`.
"""

from __future__ import annotations

import uuid

from django.urls import reverse
from django.utils import timezone

from core.money import inr

from .models import Order
from .selectors import LIVE_STATUSES

_PK = "987654321"


def row_url(name: str) -> tuple[str, str]:
    """(before, after) the id in a per-row URL: long tables join strings instead of calling
    reverse() per row (which was a third of the page's time at 200 rows)."""
    before, _, after = reverse(name, args=[int(_PK)]).partition(_PK)
    return before, after


def _join(url: tuple[str, str], pk) -> str:
    return f"{url[0]}{pk}{url[1]}" if url[0] else ""


def sign_cls(value) -> str:
    """The colour of a money figure: "neg" below zero, "pos" above, nothing for zero or unknown."""
    return "neg" if value is not None and value < 0 else "pos" if value else ""


CLOSE_CONFIRM = "Exit {qty} {symbol} on {account} at market? Reduce-only: never more than the broker still holds."


def position_rows(rows: list[dict], close_url: tuple[str, str] = ("", "")) -> list[dict]:
    """Positions for the books page. `confirm_tpl` keeps "{qty}" so the page can restate the
    quantity after a fill without re-rendering the row."""
    out = []
    for r in rows:
        p, res, ltp = r["position"], r["pnl"], r["ltp"]
        tpl = CLOSE_CONFIRM.replace("{symbol}", p.symbol).replace("{account}", p.account.name)
        out.append(
            {
                "pk": p.pk,
                "key": p.key,
                "account_id": p.account_id,
                "raw_avg": str(p.average_price),
                "raw_realized": str(p.realized),
                "raw_ltp": str(ltp) if ltp is not None else "",
                "account": p.account.name,
                "symbol": p.symbol,
                "product": p.product,
                "qty": p.quantity,
                "qty_cls": "neg" if p.quantity < 0 else "",
                "avg": inr(p.average_price),
                "ltp_text": inr(ltp) if ltp is not None else "no fresh price" if p.quantity else "—",
                "ltp_cls": "neg" if ltp is None and p.quantity else "",
                "close_url": _join(close_url, p.pk) if p.quantity else "",
                # Each Close button posts its own one-time token (a button's name/value is sent
                # with the shared row form), so two clicks on one row are one exit.
                "close_token": uuid.uuid4().hex if p.quantity else "",
                "realized": inr(p.realized),
                "unrealized": inr(res.unrealized) if res else "—",
                "unrealized_cls": sign_cls(res.unrealized) if res else "",
                "total": inr(res.total) if res else "—",
                "total_cls": sign_cls(res.total) if res else "",
                "confirm": tpl.replace("{qty}", str(p.quantity)),
                "confirm_tpl": tpl,
            }
        )
    return out


def position_subtotals(subtotals: list[dict]) -> list[dict]:
    """Per-account subtotals (selectors.positions_page) for the table above the positions."""
    out = []
    for s in subtotals:
        a, t = s["account"], s["pnl"]
        out.append(
            {
                "pk": a.pk,
                "name": a.name,
                "state": a.trading_state,
                "state_label": a.get_trading_state_display(),
                "open": s["open"],
                "unpriced": s["unpriced"],
                "realized": inr(t.realized),
                "unrealized": inr(t.unrealized),
                "unrealized_cls": sign_cls(t.unrealized),
                "total": inr(t.total),
                "total_cls": sign_cls(t.total),
            }
        )
    return out


def positions_summary(subtotals: list[dict], totals) -> dict:
    """The three cards and the "no fresh price" note above the positions."""
    return {
        "realized": inr(totals.realized),
        "realized_cls": sign_cls(totals.realized),
        "unrealized": inr(totals.unrealized),
        "unrealized_cls": sign_cls(totals.unrealized),
        "total": inr(totals.total),
        "total_cls": sign_cls(totals.total),
        "unpriced": sum(s["unpriced"] for s in subtotals),
    }


def order_rows(orders, urls: dict[str, tuple[str, str]] | None = None) -> list[dict]:
    """Orders for the books page; `urls` holds row_url() pairs by URL name."""
    urls = urls or {}

    def url(name: str, pk) -> str:
        return _join(urls.get(name, ("", "")), pk)

    out = []
    for o in orders:
        terms = o.pricetype
        if o.price:
            terms += f" @ {inr(o.price)}"
        if o.trigger_price:
            terms += f" trg {inr(o.trigger_price)}"
        out.append(
            {
                "pk": o.pk,
                "time": timezone.localtime(o.created_at).strftime("%d %b, %H:%M:%S"),
                "account": o.account.name,
                "batch_id": o.batch_id,
                "text": f"{o.action} {o.quantity} {o.symbol}",
                "exit": o.reduce_only,
                "terms": f"{terms} · {o.product}",
                "status": o.status,
                "status_label": o.status_label,
                "broker_orderid": o.broker_orderid or "—",
                "filled": o.filled_quantity,
                "avg": inr(o.average_price) if o.average_price else "—",
                "note": " · ".join(x for x in (o.note, o.last_error) if x),
                "live": o.status in LIVE_STATUSES,
                "row_cls": row_cls(o.status),
                "batch_url": url("batch_detail", o.batch_id) if o.batch_id else "",
                "modify_url": url("order_modify", o.pk),
                "cancel_url": url("order_cancel", o.pk),
            }
        )
    return out


def row_cls(status: str) -> str:
    """An order's row is red when it needs a person: an exit that could not be placed."""
    return "row-attention" if status == Order.Status.ATTENTION else ""


def attention_accounts(rows: list[dict]) -> list[dict]:
    """selectors.exits_needing_attention as the dashboard and accounts list show it: each account
    with a link to its orders needing attention in the books."""
    books = reverse("books")
    return [
        {
            "account_id": r["account_id"],
            "name": r["account__name"],
            "count": r["count"],
            "count_text": f"{r['count']} exit{'s' if r['count'] != 1 else ''}",
            "url": f"{books}?tab=orders&status={Order.Status.ATTENTION}&account={r['account_id']}",
        }
        for r in rows
    ]
