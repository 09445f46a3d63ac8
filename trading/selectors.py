"""Reads for the trading pages: orders and positions visible to a user, with live P&L."""

from __future__ import annotations

import re
import time
from decimal import Decimal

from django.conf import settings
from django.db.models import Count, QuerySet
from django.utils import timezone

from accounts.selectors import account_list_visible_to
from core.calendar import trading_day_start
from core.timefmt import broker_time
from marketdata import store

from . import pnl
from .models import BrokerBook, Order, OrderBatch, Position, Reconciliation


def orders_visible_to(*, user, account_id: int | None = None) -> QuerySet[Order]:
    qs = (
        Order.objects.filter(account__in=account_list_visible_to(user=user))
        .select_related("account")
        .defer("account__funds", "account__api_key_encrypted", "account__last_error")
    )
    return qs.filter(account_id=account_id) if account_id else qs


def batch_get(*, user, pk: int) -> OrderBatch | None:
    return OrderBatch.objects.filter(pk=pk, orders__account__in=account_list_visible_to(user=user)).distinct().first()


def batch_terms(*, batch_id: int) -> list[dict]:
    """What the mirrored order asked, leg by leg (the same on every account): side, quantity,
    instrument, type, price, trigger and product."""
    seen: dict[tuple, dict] = {}
    for o in Order.objects.filter(batch_id=batch_id, parent__isnull=True).order_by("pk"):
        key = (o.symbol, o.exchange, o.action, o.pricetype, o.product, o.price, o.trigger_price)
        seen.setdefault(key, {"order": o, "accounts": 0})["accounts"] += 1
    return list(seen.values())


def batch_rows(*, batch_id: int) -> list[dict]:
    orders = Order.objects.filter(batch_id=batch_id).exclude(status=Order.Status.SPLIT).select_related("account")
    return [order_row(o) for o in orders.order_by("account__name", "pk")]


# A mirrored order's one name, wherever a trader sees it (its page, the books, the CSV, messages).
GROUP_PREFIX = "M-"


def group_id(batch_id: int | None) -> str:
    return f"{GROUP_PREFIX}{batch_id}" if batch_id else ""


# Orders that will still move by themselves (sent, queued, or their outcome being settled).
WORKING = {Order.Status.PENDING, Order.Status.SENDING, Order.Status.ACCEPTED, Order.Status.OPEN, Order.Status.UNKNOWN}
# The reduce-only gate's word that the broker itself holds nothing more to close: that exit's job
# is done. (Its other "nothing left to close", when the broker's view and ours disagree, is not
# proof of flat: what only the broker shows is still open there.)
NOTHING_TO_CLOSE = "the broker shows nothing left to close"
# Written on an entry taken as rejected after the exit-retry window although the cancel that was
# to prove it dead failed (fills._attempt_end): the broker may still hold it live.
NOT_PROVEN = "(not proven:"


def _may_be_at_broker(o: Order, day_start) -> bool:
    """An order that no longer moves here, yet may still be working at the broker: an exit handed
    to a human while an attempt of it was never proven absent or dead (its broker id kept, a
    reply lost and never proven absent, queued for approval), or an entry taken as rejected
    without proof. Sent again, it would be the same order twice — an exit's duplicate a flip,
    since the reduce-only gate counts only orders it knows are working. Orders of a previous
    trading day ended with it."""
    if o.sent_at is None or o.sent_at < day_start:
        return False
    if o.status == Order.Status.ATTENTION:
        return o.broker_orderid is not None or o.absent_reads < max(1, settings.ORDER_ABSENT_READS)
    return o.status == Order.Status.REJECTED and NOT_PROVEN in o.last_error


def _left(o: Order) -> int:
    """What an order that will not move any more left undone (0 for a working one)."""
    if o.status in WORKING or o.status == Order.Status.COMPLETE:
        return 0
    if o.reduce_only and o.status == Order.Status.REJECTED and NOTHING_TO_CLOSE in o.last_error:
        return 0
    return max(o.quantity - o.filled_quantity, 0)


def batch_outcome(*, batch_id: int) -> list[dict]:
    """Per account of a batch, per leg (a split order and its children are one leg): what was
    asked, filled (with the average), left undone and why, and whether anything still moves.
    Read from our orders, which follow the broker's statuses; presenters.batch_summary words it."""
    orders = list(Order.objects.filter(batch_id=batch_id).select_related("account").order_by("account__name", "pk"))
    # Only a close (an exit batch: a position's or an account's) ends flat; a partial exit placed
    # from the order form on a reducing account is an exit that leaves the rest open.
    closes = OrderBatch.objects.filter(pk=batch_id, kind=OrderBatch.Kind.EXIT).exists()
    children: dict[int, list[Order]] = {}
    for o in orders:
        if o.parent_id:
            children.setdefault(o.parent_id, []).append(o)
    day_start = trading_day_start(timezone.now())
    accounts: dict[int, dict] = {}
    for o in orders:
        if o.parent_id:
            continue
        sent = children.get(o.pk, []) if o.status == Order.Status.SPLIT else [o]
        filled = sum(c.filled_quantity for c in sent)
        paid = sum((c.average_price * c.filled_quantity for c in sent if c.average_price), Decimal(0))
        left = sum(_left(c) for c in sent)
        undone = [c for c in sent if _left(c)]
        statuses = {c.status for c in undone}
        causes = (Order.Status.ATTENTION, Order.Status.REJECTED, Order.Status.CANCELLED)
        cause = next((s for s in causes if s in statuses), "")
        leg = {
            "order": o,
            "symbol": o.symbol,
            "exchange": o.exchange,
            "action": o.action,
            "asked": o.quantity,
            "filled": filled,
            "average": (paid / filled) if filled else None,
            "left": left,
            "cause": cause,
            "reasons": sorted({c.last_error for c in undone if c.last_error}),
            "working": sum(1 for c in sent if c.status in WORKING),
            "unknown": any(c.status == Order.Status.UNKNOWN for c in sent),
            # Left undone here, perhaps not at the broker: never retried from here (a person checks).
            "unsettled": any(_may_be_at_broker(c, day_start) for c in undone),
            "exit": o.reduce_only,
            "close": o.reduce_only and closes,
        }
        entry = accounts.setdefault(
            o.account_id, {"account_id": o.account_id, "account": o.account.name, "legs": [], "working": 0}
        )
        entry["legs"].append(leg)
        entry["working"] += leg["working"]
    return list(accounts.values())


def leg_retryable(leg: dict) -> bool:
    """What Retry re-issues: an exit still open, or an entry the broker rejected or that could not
    be placed (an entry the trader cancelled stays cancelled). Never what may still be working at
    the broker (`unsettled`)."""
    if leg["left"] <= 0 or leg.get("unsettled"):
        return False
    return leg["exit"] or leg["cause"] != Order.Status.CANCELLED


def retry_refusal(entry: dict) -> str:
    """Why one account's part of a batch (an entry of `batch_outcome`) cannot be retried now, or ""."""
    if entry["working"]:
        return f"{entry['account']}: orders of this mirrored order are still working; wait"
    unsettled = [leg["symbol"] for leg in entry["legs"] if leg.get("unsettled")]
    if unsettled:
        return (
            f"{entry['account']}: {', '.join(unsettled)} may still be working at the broker (its last attempt "
            "was never proven absent): check the broker's order book and close or place it by hand there; "
            "not retried from here"
        )
    return ""


def batch_retries(*, batch_id: int) -> dict[int, int]:
    """account id → the batch that retried what this one left on it (groups.batch_retry)."""
    prefix = f"retry:b{batch_id}:a"
    out: dict[int, int] = {}
    for pk, token in OrderBatch.objects.filter(client_token__startswith=prefix).values_list("pk", "client_token"):
        out[int(token[len(prefix) :])] = pk
    return out


def batch_live_orders(*, batch_id: int) -> list[Order]:
    """The batch's orders a group cancel or modify acts on: working at the broker, or still queued."""
    statuses = [*LIVE_STATUSES, Order.Status.PENDING]
    return list(
        Order.objects.filter(batch_id=batch_id, status__in=statuses)
        .select_related("account")
        .order_by("account__name", "pk")
    )


def fresh_ltps(keys: list[str]) -> dict[str, Decimal]:
    """ "EXCHANGE:SYMBOL" → last traded price, for the prices the feed keeps fresh (others left out)."""
    prices = store.prices_get(sorted(set(keys)))
    now_ms = time.time() * 1000
    return {
        k: Decimal(str(rec["ltp"]))
        for k, rec in prices.items()
        if store.is_fresh(rec, now_ms, settings.PRICE_MAX_AGE) and rec.get("ltp")
    }


def order_row(o: Order) -> dict:
    return {
        "id": o.pk,
        "account_id": o.account_id,
        "account": o.account.name,
        "symbol": o.symbol,
        "exchange": o.exchange,
        "action": o.action,
        "quantity": o.quantity,
        "pricetype": o.pricetype,
        "price": f"{o.price:.2f}" if o.price else "",
        "trigger_price": f"{o.trigger_price:.2f}" if o.trigger_price else "",
        "product": o.product,
        "group": group_id(o.batch_id),
        "status": o.status,
        "status_label": o.status_label,
        "broker_orderid": o.broker_orderid or "",
        "filled_quantity": o.filled_quantity,
        "average_price": f"{o.average_price:.2f}" if o.average_price is not None else "",
        "error": o.last_error,
        "note": o.note,
        "parent_id": o.parent_id,
    }


def positions_with_pnl(*, user, account_id: int | None = None) -> tuple[list[dict], pnl.PnL]:
    """Every position with its live P&L (fresh prices only: an open position without one shows
    "no price", never 0), and the totals. One price read for all positions (no N+1)."""
    # Only what the page shows: each joined account row otherwise brings JSON, ciphertext and five
    # timestamps to parse — at 200 positions that was a third of the query's time.
    qs = (
        Position.objects.filter(account__in=account_list_visible_to(user=user))
        .select_related("account")
        .only(
            "account_id",
            "symbol",
            "exchange",
            "product",
            "quantity",
            "average_price",
            "realized",
            "account__name",
            "account__owner_id",
            "account__trading_state",
            "account__halt_reason",
        )
    )
    if account_id:
        qs = qs.filter(account_id=account_id)
    positions = list(qs)
    prices = store.prices_get(sorted({p.key for p in positions}))
    now_ms = time.time() * 1000
    rows, parts = [], []
    for p in positions:
        rec = prices.get(p.key)
        ltp = Decimal(str(rec["ltp"])) if store.is_fresh(rec, now_ms, settings.PRICE_MAX_AGE) else None
        result = pnl.pnl(pnl.Position(p.quantity, p.average_price, p.realized), ltp)
        if result is not None:
            parts.append(result)
        rows.append({"position": p, "ltp": ltp, "pnl": result})
    return rows, pnl.total(parts)


# ------------------------------------------------------------------ books
ORDER_SORTS = {
    "time": "created_at",
    "account": "account__name",
    "symbol": "symbol",
    "status": "status",
    "qty": "quantity",
}
LIVE_STATUSES = [Order.Status.ACCEPTED, Order.Status.OPEN]


def sort_key(value: str | None, allowed, default: str) -> tuple[str, bool]:
    """`?sort=symbol` or `?sort=-symbol`, limited to `allowed` (anything else falls back)."""
    value = (value or "").strip()
    desc = value.startswith("-")
    name = value.lstrip("-")
    if name not in allowed:
        return default.lstrip("-"), default.startswith("-")
    return name, desc


def order_list(
    *, user, account_id: int | None = None, symbol: str = "", status: str = "", sort: str = "", limit: int | None = 200
):
    qs = orders_visible_to(user=user, account_id=account_id).exclude(status=Order.Status.SPLIT)
    group = re.fullmatch(rf"{GROUP_PREFIX}([0-9]{{1,18}})", symbol.strip().upper())  # a database integer
    if group:  # "M-2": every order of that mirrored order
        qs = qs.filter(batch_id=int(group[1]))
    elif symbol:
        qs = qs.filter(symbol__icontains=symbol)
    if status == "live":
        qs = qs.filter(status__in=LIVE_STATUSES)
    elif status in Order.Status.values:
        qs = qs.filter(status=status)
    name, desc = sort_key(sort, ORDER_SORTS, "-time")
    field = ORDER_SORTS[name]
    qs = qs.order_by(f"-{field}" if desc else field, "-id")
    return qs[:limit] if limit else qs


def _sorted(rows: list[dict], sort: str, allowed: dict, default: str) -> list[dict]:
    name, desc = sort_key(sort, allowed, default)
    getter = allowed[name]

    def key(r):
        v = getter(r)
        return (v is None, 0 if v is None else v)  # rows without a value last

    return sorted(rows, key=key, reverse=desc)


POSITION_SORTS = {
    "account": lambda r: r["position"].account.name,
    "symbol": lambda r: r["position"].symbol,
    "qty": lambda r: r["position"].quantity,
    "pnl": lambda r: r["pnl"].total if r["pnl"] else None,
}


def positions_page(*, user, account_id: int | None = None, symbol: str = "", open_only: bool = False, sort: str = ""):
    """Positions with live P&L, per-account subtotals (account, open and unpriced counts, pnl.total
    of its priced rows) and the grand total; presenters.py formats them."""
    rows, totals = positions_with_pnl(user=user, account_id=account_id)
    if symbol:
        rows = [r for r in rows if symbol.upper() in r["position"].symbol]
    if open_only:
        rows = [r for r in rows if r["position"].quantity]
    per_account: dict[int, dict] = {}
    for r in rows:
        a = r["position"].account
        entry = per_account.setdefault(a.pk, {"account": a, "parts": [], "open": 0, "unpriced": 0})
        entry["open"] += 1 if r["position"].quantity else 0
        if r["pnl"] is not None:
            entry["parts"].append(r["pnl"])
        elif r["position"].quantity:
            entry["unpriced"] += 1
    subtotals = [
        {"account": e["account"], "open": e["open"], "unpriced": e["unpriced"], "pnl": pnl.total(e["parts"])}
        for e in sorted(per_account.values(), key=lambda e: e["account"].name)
    ]
    totals = pnl.total([r["pnl"] for r in rows if r["pnl"] is not None])
    return _sorted(rows, sort, POSITION_SORTS, "account"), subtotals, totals


def broker_book_rows(*, user, kind: str, account_id: int | None = None, symbol: str = "", sort: str = ""):
    """The broker's trades or holdings across accounts, from the copies the reconcile cycle keeps.
    Returns (rows, books) — books tell when each account's copy was taken and whether it is current."""
    books = BrokerBook.objects.filter(account__in=account_list_visible_to(user=user), kind=kind).select_related(
        "account"
    )
    if account_id:
        books = books.filter(account_id=account_id)
    books = sorted(books, key=lambda b: b.account.name)
    rows = []
    for b in books:
        for r in b.rows:
            if symbol and symbol.upper() not in r.get("symbol", ""):
                continue
            # `at`: the broker's timestamp as an instant, whatever its shape (a bare "10:15:00"
            # is the trading day the copy was read in); None when it has none we can read.
            at = broker_time(r.get("time"), b.fetched_at) if kind == "trades" else None
            rows.append({**r, "account": b.account.name, "account_id": b.account_id, "at": at})
    if kind == "trades":
        # Ours = the broker's order id is one we recorded (a tag in `strategy` is not carried by
        # every broker's tradebook). One query for all accounts.
        ids = {r.get("orderid") for r in rows if r.get("orderid")}
        known = set(
            Order.objects.filter(account_id__in={b.account_id for b in books}, broker_orderid__in=ids).values_list(
                "account_id", "broker_orderid"
            )
        )
        for r in rows:
            r["ours"] = (r["account_id"], r.get("orderid")) in known
    allowed = {
        "account": lambda r: r["account"],
        "symbol": lambda r: r.get("symbol", ""),
        "qty": lambda r: r.get("quantity", 0),
        "value": lambda r: Decimal(r.get("value") or r.get("pnl") or 0),
        "time": lambda r: r["at"],
    }
    return _sorted(rows, sort, allowed, "account"), books


def trade_totals(rows: list[dict]) -> dict:
    buy = sum((Decimal(r["value"]) for r in rows if r["action"] == "BUY"), Decimal(0))
    sell = sum((Decimal(r["value"]) for r in rows if r["action"] == "SELL"), Decimal(0))
    outside = sum(1 for r in rows if not r.get("ours"))
    return {"buy": buy, "sell": sell, "count": len(rows), "outside": outside}


def holding_totals(rows: list[dict]) -> dict:
    return {"pnl": sum((Decimal(r["pnl"]) for r in rows), Decimal(0)), "count": len(rows)}


def funds_rows(*, user, account_id: int | None = None):
    accounts = account_list_visible_to(user=user)
    if account_id:
        accounts = accounts.filter(pk=account_id)
    rows = []
    for a in accounts:
        f = a.funds or {}
        rows.append(
            {
                "account": a,
                "cash": Decimal(f["available_cash"]) if "available_cash" in f else None,
                "collateral": Decimal(f.get("collateral", "0")),
                "used": Decimal(f["utilised"]) if "utilised" in f else None,
                "m2m": Decimal(f.get("m2m_realized", "0")) + Decimal(f.get("m2m_unrealized", "0")) if f else None,
                "at": a.funds_at,
            }
        )
    total = {
        k: sum((r[k] for r in rows if r[k] is not None), Decimal(0)) for k in ("cash", "collateral", "used", "m2m")
    }
    return rows, total


def reconciliation_flags(*, user, account_id: int | None = None):
    """Accounts whose positions differ from the broker's, or whose broker could not be read."""
    qs = Reconciliation.objects.filter(account__in=account_list_visible_to(user=user)).select_related("account")
    if account_id:
        qs = qs.filter(account_id=account_id)
    return [r for r in qs.order_by("account__name") if r.state != Reconciliation.State.MATCHED]


def exits_needing_attention(*, user) -> list[dict]:
    """Per account of `user`'s with exits that could not be placed (status "needs attention"):
    account id, name and how many, by name. One grouped query, whatever the number of accounts."""
    return list(
        Order.objects.filter(account__in=account_list_visible_to(user=user), status=Order.Status.ATTENTION)
        .values("account_id", "account__name")
        .annotate(count=Count("pk"))
        .order_by("account__name", "account_id")
    )
