"""Display rows for the trading pages: selectors return data (models, Decimals, PnL), these turn it
into the strings, CSS classes, confirm texts and URLs that a template only prints.

Long tables are pre-formatted here rather than with template filters: 200 rows rendered with
per-cell filters and comparisons took ~100 ms, plain strings take a fraction of that. The books
page's script recomputes the live figures from the raw numbers each row also carries (`raw_*`),
with the same rules as `pnl.py`.
"""

from __future__ import annotations

import re
import uuid
from decimal import Decimal

from django.urls import reverse

from core.money import inr, rupees
from core.timefmt import ist

from .models import Order
from .selectors import LIVE_STATUSES, group_id, leg_retryable

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
        "realized": rupees(totals.realized),
        "realized_cls": sign_cls(totals.realized),
        "unrealized": rupees(totals.unrealized),
        "unrealized_cls": sign_cls(totals.unrealized),
        "total": rupees(totals.total),
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
        out.append(
            {
                "pk": o.pk,
                "time": ist(o.created_at),
                "account": o.account.name,
                "batch_id": o.batch_id,
                "group": group_id(o.batch_id),
                "text": f"{o.action} {o.quantity} {o.symbol}",
                "exit": o.reduce_only,
                "terms": order_terms(o),
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


# ------------------------------------------------------------------ mirrored orders (batches)
def batch_title(batch) -> str:
    """ "M-2 · Buy 65 SBIN" — the one id a trader sees for a mirrored order, and what it is."""
    return group_id(batch.pk)


def order_terms(o) -> str:
    """ "LIMIT @ ₹212.35 · MIS", "SL @ ₹210.00 trg ₹211.00 · NRML", "MARKET · MIS"."""
    terms = o.pricetype
    if o.price:
        terms += f" @ {rupees(o.price)}"
    if o.trigger_price:
        terms += f" trg {rupees(o.trigger_price)}"
    return f"{terms} · {o.product}"


def batch_terms(terms: list[dict]) -> list[dict]:
    return [
        {
            "text": f"{t['order'].action} {t['order'].quantity} {t['order'].symbol}",
            "exchange": t["order"].exchange,
            "terms": order_terms(t["order"]),
            "action_cls": "neg" if t["order"].action == "SELL" else "pos",
            "accounts": t["accounts"],
        }
        for t in terms
    ]


def _leg_left(leg: dict) -> str:
    sym = leg["symbol"]
    if leg.get("unsettled"):
        return f"{sym}: {leg['left']} may still be working at the broker — check it there (not retried from here)"
    if leg["exit"]:
        return f"{sym}: {leg['left']} still open"
    if leg["cause"] == Order.Status.CANCELLED:
        return f"{sym}: cancelled, {leg['filled']} of {leg['asked']} filled"
    why = f" — {leg['reasons'][0]}" if leg["reasons"] else ""
    if leg["filled"]:
        return f"{sym}: {leg['left']} of {leg['asked']} not filled{why}"
    return f"{sym}: rejected{why}" if leg["cause"] == Order.Status.REJECTED else f"{sym}: not placed{why}"


def batch_summary(outcome: list[dict], retries: dict[int, int], retry_url: tuple[str, str] = ("", "")) -> dict:
    """selectors.batch_outcome as the page says it: one line per account — "flat ✓",
    "filled 65 @ ₹212.35 ✓", "NIFTY…CE: 845 still open ✗" with Retry — and a headline that never
    calls a batch done while anything still moves, nor placed when every account rejected it."""
    rows = []
    for a in outcome:
        legs = a["legs"]
        undone = [leg for leg in legs if leg["left"]]
        retry = ""
        if a["working"]:
            unknown = any(leg["unknown"] for leg in legs)
            text = (
                "outcome unknown: checking the broker (never sent again on a guess) …"
                if unknown
                else f"working: {a['working']} order{'s' if a['working'] != 1 else ''} at the broker …"
            )
            ok = None
        elif not undone:
            ok = True
            if all(leg["close"] for leg in legs):
                text = "flat ✓"
            elif len(legs) == 1:
                leg = legs[0]
                text = f"filled {leg['filled']} @ {rupees(leg['average'])} ✓"
            else:
                text = (
                    "; ".join(f"{lg['symbol']} filled {lg['filled']} @ {rupees(lg['average'])}" for lg in legs) + " ✓"
                )
        else:
            unsettled = any(leg.get("unsettled") for leg in undone)
            ok = not unsettled and not any(leg_retryable(leg) for leg in undone)
            text = "; ".join(_leg_left(leg) for leg in undone)
            done = len(legs) - len(undone)
            if done and all(leg["close"] for leg in legs):
                text += f" ({done} other leg{'s' if done != 1 else ''} flat)"
            text += " ✓" if ok else " ✗"
            if not ok and not unsettled and a["account_id"] not in retries:
                retry = _join(retry_url, a["account_id"]) if retry_url[0] else "retry"
        retried = retries.get(a["account_id"])
        rows.append(
            {
                "account_id": a["account_id"],
                "account": a["account"],
                "text": text,
                "ok": ok,
                "cls": "pos" if ok else "neg" if ok is False else "",
                "retry_url": retry,
                "retried_as": group_id(retried) if retried else "",
                "retried_id": retried,
                "open_legs": [leg["symbol"] for leg in undone] if ok is False else [],
            }
        )
    n = len(rows)
    working = sum(1 for r in rows if r["ok"] is None)
    failed = sum(1 for r in rows if r["ok"] is False)
    filled = any(leg["filled"] for a in outcome for leg in a["legs"])
    plural = "s" if n != 1 else ""
    if not n:
        headline, cls = "Nothing was placed.", ""
    elif working:
        headline, cls = f"Working: {n - working} of {n} account{plural} done so far …", ""
    elif failed == n and not filled:
        headline, cls = f"Not placed: every account ({n}) was refused or rejected ✗", "neg"
    elif failed:
        headline, cls = f"{failed} of {n} account{plural} need{'s' if failed == 1 else ''} you ✗", "neg"
    elif outcome and all(leg["close"] for a in outcome for leg in a["legs"]):
        headline, cls = f"Done: {n} account{plural} flat ✓", "pos"
    else:
        headline, cls = f"Done on all {n} account{plural} ✓", "pos"
    return {"headline": headline, "cls": cls, "rows": rows, "done": not working}


def confirm_rows(items: list[dict], ltps: dict) -> dict:
    """What a confirmation lists before money moves: account × side × quantity × instrument ×
    price × estimated value (the LTP for a market order, marked as an estimate; "no live price"
    when the feed has none). `items` carry account, action, quantity, symbol, exchange, pricetype,
    price, trigger_price."""
    rows, total, unpriced = [], Decimal(0), 0
    for it in items:
        ltp = ltps.get(f"{it['exchange']}:{it['symbol']}")
        pt = it.get("pricetype") or "MARKET"
        price = it.get("price") or Decimal(0)
        if pt in ("LIMIT", "SL") and price:
            price_text, basis = f"{pt} {rupees(price)}", price
        elif ltp is not None:
            price_text, basis = f"{pt} ≈ {rupees(ltp)} (LTP)", ltp
        else:
            price_text, basis = f"{pt}, no live price", None
        if it.get("trigger_price"):
            price_text += f" trg {rupees(it['trigger_price'])}"
        value = basis * it["quantity"] if basis is not None else None
        if value is None:
            unpriced += 1
        else:
            total += value
        rows.append(
            {
                "account": it["account"],
                "action": it["action"],
                "action_cls": "neg" if it["action"] == "SELL" else "pos",
                "quantity": it["quantity"],
                "symbol": it["symbol"],
                "exchange": it["exchange"],
                "price": price_text,
                "value": rupees(value),
                "note": it.get("note", ""),
            }
        )
    return {"rows": rows, "total": rupees(total), "unpriced": unpriced}


def row_url_pair(name: str, first) -> tuple[str, str]:
    """row_url() for a URL with two ids, the first fixed (a batch) and the second per row."""
    before, _, after = reverse(name, args=[first, int(_PK)]).partition(_PK)
    return before, after


def order_name(o) -> str:
    """How messages name one order: its mirrored order, account and what it is."""
    what = f"{o.action} {o.quantity} {o.symbol}"
    if o.batch_id:
        return f"{group_id(o.batch_id)} · {o.account.name} · {what}"
    return f"{o.account.name} · {what}"


def retried_from(batch) -> dict | None:
    """The mirrored order a retry batch re-issued (selectors.batch_retries' token), for a link."""
    m = re.fullmatch(r"retry:b(\d+):a\d+", batch.client_token or "")
    if not m:
        return None
    pk = int(m[1])
    return {"name": group_id(pk), "url": reverse("batch_detail", args=[pk])}
