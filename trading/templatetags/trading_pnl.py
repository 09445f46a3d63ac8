"""P&L for pages outside trading (the dashboard), computed exactly as the books compute it.

The dashboard is an accounts view and accounts may not import trading (the layers contract); its
template loads this library instead. The figures are selectors.positions_page's — the same
positions, prices and rules as the books' per-account subtotals — so the two pages agree.
"""

from __future__ import annotations

from django import template

from core.money import rupees

from .. import selectors
from ..presenters import sign_cls

register = template.Library()


@register.simple_tag(takes_context=True)
def books_pnl(context) -> dict:
    """`{% books_pnl as pnl %}`: {"total", "total_cls", "unpriced", "accounts": {id: {...}}}."""
    request = context.get("request")
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {"accounts": {}, "total": rupees(0), "total_cls": "", "unpriced": 0}
    _rows, subtotals, totals = selectors.positions_page(user=user)
    accounts = {
        s["account"].pk: {
            "total": rupees(s["pnl"].total),
            "cls": sign_cls(s["pnl"].total),
            "unpriced": s["unpriced"],
            "open": s["open"],
        }
        for s in subtotals
    }
    return {
        "accounts": accounts,
        "total": rupees(totals.total),
        "total_cls": sign_cls(totals.total),
        "unpriced": sum(s["unpriced"] for s in subtotals),
    }


@register.filter
def pnl_for(pnl: dict, account_id) -> dict | None:
    return pnl["accounts"].get(account_id)
