"""Reads. Every access to accounts goes through `account_list_visible_to`."""

from __future__ import annotations

import re
from decimal import Decimal

from django.db.models import Q, QuerySet

from .crypto import normalised_host
from .models import AuditEvent, TradingAccount


def account_list_visible_to(*, user) -> QuerySet[TradingAccount]:
    if not user.is_authenticated:
        return TradingAccount.objects.none()
    return TradingAccount.objects.filter(owner=user)


def account_get(*, user, pk: int) -> TradingAccount | None:
    return account_list_visible_to(user=user).filter(pk=pk).first()


def account_get_by_id(*, pk: int, related: tuple[str, ...] = ()) -> TradingAccount:
    """For internal callers (tasks, services) that were handed an id; no user scoping.
    `related` names one-to-one rows other apps hang on the account (trading's "reconciliation"),
    fetched in the same query."""
    return TradingAccount.objects.select_related(*related).get(pk=pk)


def account_get_owned(*, user, pk: int) -> TradingAccount:
    """`user`'s own account (raises TradingAccount.DoesNotExist for anyone else's)."""
    return TradingAccount.objects.get(pk=pk, owner=user)


def account_list_tradable(*, user) -> QuerySet[TradingAccount]:
    """The accounts `user` may place orders in (their active ones)."""
    return TradingAccount.objects.filter(owner=user, is_active=True)


def account_list_active(*, with_ws_url: bool = False) -> QuerySet[TradingAccount]:
    """Every active account, of every owner (workers and streams); `with_ws_url` keeps only those
    that have a WebSocket address."""
    qs = TradingAccount.objects.filter(is_active=True)
    return qs.exclude(ws_url="") if with_ws_url else qs


def account_ids_active() -> list[int]:
    return list(TradingAccount.objects.filter(is_active=True).values_list("pk", flat=True))


def account_list_feed_candidates(*, admins_only: bool = False) -> QuerySet[TradingAccount]:
    """Active accounts whose key may work, grouped by owner, each owner's market-data account
    first, then by latency. `admins_only`: of administrators (staff) only."""
    unusable = (TradingAccount.Status.KEY_UNREADABLE, TradingAccount.Status.INVALID_KEY)
    qs = TradingAccount.objects.filter(is_active=True)
    if admins_only:
        qs = qs.filter(Q(owner__is_staff=True) | Q(owner__is_superuser=True))
    return qs.exclude(status__in=unusable).order_by("owner_id", "-holds_data_role", "latency_ms", "pk")


def account_data_source(*, user) -> TradingAccount | None:
    """The account `user`'s pages read market data from: the one holding the market-data role,
    else the fastest connected one."""
    qs = account_list_visible_to(user=user).filter(is_active=True)
    return (
        qs.filter(holds_data_role=True).first()
        or qs.filter(status=TradingAccount.Status.CONNECTED).order_by("latency_ms").first()
    )


def account_card(account: TradingAccount) -> dict:
    """What the dashboard shows for one account (also the live-update payload)."""
    f = account.funds or {}
    m2m = Decimal(f.get("m2m_realized", "0")) + Decimal(f.get("m2m_unrealized", "0")) if f else None
    return {
        "id": account.pk,
        "name": account.name,
        "broker": account.broker,
        "status": account.status,
        "status_label": account.get_status_display(),
        "status_badge": account.status_badge,
        "is_paper": account.is_paper,
        "trading_state": account.trading_state,
        "trading_state_label": account.get_trading_state_display(),
        "latency_ms": account.latency_ms,
        "is_primary": account.is_primary,
        "holds_data_role": account.holds_data_role,
        "is_active": account.is_active,
        "cash": f.get("available_cash"),
        "used_margin": f.get("utilised"),
        "m2m": str(m2m) if m2m is not None else None,
        "last_checked_at": account.last_checked_at.isoformat() if account.last_checked_at else None,
        "last_error": account.last_error,
        "order_mode": account.order_mode,
        "order_mode_label": account.get_order_mode_display(),
    }


def same_server_names(accounts) -> dict[int, list[str]]:
    """For each account, the names of the others (in `accounts`, one owner's) on the same OpenAlgo
    server: one server fronts one broker account, so they are probably that account twice."""
    by_host: dict[str, list[TradingAccount]] = {}
    for a in accounts:
        by_host.setdefault(normalised_host(a.host_url), []).append(a)
    return {
        a.pk: [b.name for b in group if b.pk != a.pk] for group in by_host.values() if len(group) > 1 for a in group
    }


def account_banners(accounts) -> dict:
    """The accounts a page must warn about above everything else: those whose broker session is
    unknown (OpenAlgo answers, the broker does not: entries refused) and those in semi-auto mode
    (entries wait for approval at OpenAlgo, exits refused here)."""
    accounts = list(accounts)
    return {
        "session_unknown": [a for a in accounts if a.status == TradingAccount.Status.BROKER_UNKNOWN],
        "semi_auto": [a for a in accounts if a.is_semi_auto],
    }


def dashboard_totals(accounts) -> dict:
    cash = used = m2m = Decimal("0")
    for a in accounts:
        f = a.funds or {}
        cash += Decimal(f.get("available_cash", "0"))
        used += Decimal(f.get("utilised", "0"))
        m2m += Decimal(f.get("m2m_realized", "0")) + Decimal(f.get("m2m_unrealized", "0"))
    accounts = list(accounts)
    return {
        "accounts": len(accounts),
        "active": sum(a.is_active for a in accounts),
        "connected": sum(a.is_healthy for a in accounts),
        "cash": cash,
        "used_margin": used,
        "m2m": m2m,
    }


def audit_list(*, user, action: str = "", account_id: int | None = None, group: str = "") -> QuerySet[AuditEvent]:
    """The audit rows `user` may read, newest first: everyone's for an admin; otherwise their own
    actions and whatever happened on their accounts (a worker's order outcome, a halt). Filtered
    by action kind, account, and mirrored order ("M-12", "m12" or "12")."""
    qs = AuditEvent.objects.select_related("user")
    if not user.is_superuser:
        qs = qs.filter(Q(user=user) | Q(account__owner=user))
    if action in AuditEvent.Action.values:
        qs = qs.filter(action=action)
    if account_id:
        qs = qs.filter(account_id=account_id)
    if group:
        qs = qs.filter(group=audit_group(group))
    return qs


def audit_group(text: str) -> str:
    """A mirrored order's id as typed ("m12", "M-12", "12") in the form audit rows store it."""
    text = text.strip().upper()
    m = re.fullmatch(r"(?:M-?)?(\d+)", text)
    return f"M-{m[1]}" if m else text
