"""Exits needing attention, for pages outside trading (the dashboard and the accounts list).

Those pages are accounts' views, and accounts may not import trading (the layers contract); the
templates, which sit above both apps, load this library instead. One grouped query per page,
kept on the request so a page that asks twice reads once.
"""

from __future__ import annotations

from django import template

from .. import presenters, selectors

register = template.Library()


@register.simple_tag(takes_context=True)
def exits_attention(context) -> list[dict]:
    """`{% exits_attention as attention %}`: the user's accounts with exits needing attention
    (presenters.attention_accounts rows), empty for nobody signed in."""
    request = context.get("request")
    user = getattr(request, "user", None) or context.get("user")
    if user is None or not user.is_authenticated:
        return []
    if request is not None and hasattr(request, "_exits_attention"):
        return request._exits_attention
    rows = presenters.attention_accounts(selectors.exits_needing_attention(user=user))
    if request is not None:
        request._exits_attention = rows
    return rows


@register.filter
def attention_for(rows: list[dict], account_id) -> dict | None:
    """`{% with need=attention|attention_for:account.pk %}`: that account's row, or None."""
    return next((r for r in rows if r["account_id"] == account_id), None)
