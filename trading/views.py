"""Orders across accounts, their live progress, and the books."""

from __future__ import annotations

import csv
from decimal import Decimal

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_POST

from accounts.selectors import account_list_visible_to

from . import selectors, services
from .forms import ModifyForm, OrderForm, RepairForm, TradingStateForm
from .models import Order, Position


@login_required
def order_new(request: HttpRequest) -> HttpResponse:
    form = OrderForm(request.POST or None, user=request.user)
    if request.method == "POST" and form.is_valid():
        d = form.cleaned_data
        leg = services.Leg(
            d["symbol"],
            d["exchange"],
            d["action"],
            d["quantity"],
            d["pricetype"],
            d["product"],
            d.get("price") or Decimal(0),
            d.get("trigger_price") or Decimal(0),
        )
        try:
            batch = services.orders_create(user=request.user, accounts=list(d["accounts"]), legs=[leg])
        except services.OrderRefused as e:
            form.add_error(None, str(e))
        else:
            messages.success(request, f"Order queued on {len(d['accounts'])} account(s).")
            return redirect("batch_detail", pk=batch.pk)
    return render(request, "trading/order_new.html", {"form": form})


@login_required
def batch_detail(request: HttpRequest, pk: int) -> HttpResponse:
    batch = selectors.batch_get(user=request.user, pk=pk)
    if batch is None:
        raise Http404("No such order")
    return render(
        request, "trading/batch_detail.html", {"batch": batch, "rows": selectors.batch_rows(batch_id=batch.pk)}
    )


TABS = ["positions", "orders", "trades", "holdings", "funds"]


def _row_url(name: str) -> tuple[str, str]:
    """(before, after) the id in a per-row URL: long tables join strings instead of calling
    reverse() per row (which was a third of the page's time at 200 rows)."""
    before, _, after = reverse(name, args=[987654321]).partition("987654321")
    return before, after


def _int(value) -> int | None:
    try:
        return int(value or 0) or None
    except (TypeError, ValueError):
        return None


@login_required
def books(request: HttpRequest) -> HttpResponse:
    """One page, five books, all accounts or one; every filter and sort is in the URL."""
    g = request.GET
    tab = g.get("tab") if g.get("tab") in TABS else "positions"
    accounts = list(account_list_visible_to(user=request.user))
    account_id = _int(g.get("account"))
    if account_id not in {a.pk for a in accounts}:
        account_id = None
    f = {"account_id": account_id, "symbol": g.get("symbol", "").strip()[:40], "sort": g.get("sort", "")}
    ctx: dict = {"tab": tab, "tabs": TABS, "accounts": accounts, "f": f, "status": g.get("status", "")}
    ctx["account"] = next((a for a in accounts if a.pk == account_id), None)
    ctx["u"] = {n: _row_url(n) for n in ("order_cancel", "order_modify", "batch_detail")}
    if tab == "positions":
        rows, subtotals, totals = selectors.positions_page(user=request.user, open_only=g.get("open") == "1", **f)
        ctx |= {"rows": rows, "subtotals": subtotals, "totals": totals, "open_only": g.get("open") == "1"}
        ctx["display"] = selectors.position_display_rows(rows, _row_url("position_close"))
        ctx["unpriced"] = sum(1 for r in rows if r["pnl"] is None and r["position"].quantity)
        ctx["flags"] = selectors.reconciliation_flags(user=request.user, account_id=account_id)
    elif tab == "orders":
        full = g.get("export") == "orders"
        ctx["orders"] = selectors.order_list(user=request.user, status=ctx["status"], limit=None if full else 200, **f)
        ctx["display"] = [] if full else selectors.order_display_rows(ctx["orders"], ctx["u"])
        ctx["statuses"] = [("live", "Open / working")] + [c for c in Order.Status.choices if c[0] != "split"]
    elif tab in ("trades", "holdings"):
        rows, copies = selectors.broker_book_rows(user=request.user, kind=tab, **f)
        ctx |= {"rows": rows, "copies": copies, "stale": [c for c in copies if not c.ok]}
        ctx["totals"] = selectors.trade_totals(rows) if tab == "trades" else selectors.holding_totals(rows)
    else:
        ctx["rows"], ctx["totals"] = selectors.funds_rows(user=request.user, account_id=account_id)
    if g.get("export") == tab:
        return _csv(tab, ctx)
    return render(request, "trading/books.html", ctx)


CSV_COLUMNS = {
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


def _csv(tab: str, ctx: dict) -> HttpResponse:
    resp = HttpResponse(content_type="text/csv")
    resp["Content-Disposition"] = f'attachment; filename="algomirror-{tab}.csv"'
    w = csv.writer(resp)
    w.writerow(CSV_COLUMNS[tab])

    def ist(t):
        return timezone.localtime(t).strftime("%Y-%m-%d %H:%M:%S") if t else ""

    if tab == "positions":
        for r in ctx["rows"]:
            p, res = r["position"], r["pnl"]
            w.writerow(
                [
                    p.account.name,
                    p.symbol,
                    p.exchange,
                    p.product,
                    p.quantity,
                    round(p.average_price, 2),
                    r["ltp"] if r["ltp"] is not None else "",
                    round(p.realized, 2),
                    round(res.unrealized, 2) if res else "",
                    round(res.total, 2) if res else "",
                ]
            )
    elif tab == "orders":
        for o in ctx["orders"]:
            w.writerow(
                [
                    ist(o.created_at),
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
            )
    elif tab in ("trades", "holdings"):
        for r in ctx["rows"]:
            w.writerow([r.get(c, "") for c in CSV_COLUMNS[tab]])
    else:
        for r in ctx["rows"]:
            w.writerow(
                [
                    r["account"].name,
                    r["cash"] if r["cash"] is not None else "",
                    r["collateral"],
                    r["used"] if r["used"] is not None else "",
                    r["m2m"] if r["m2m"] is not None else "",
                    ist(r["at"]),
                ]
            )
    return resp


# ------------------------------------------------------------------ actions
def _back(request: HttpRequest, default: str = "books") -> HttpResponse:
    nxt = request.POST.get("next", "")
    return redirect(nxt if nxt.startswith("/") and not nxt.startswith("//") else default)


def _account(request: HttpRequest, pk: int):
    return get_object_or_404(account_list_visible_to(user=request.user), pk=pk)


def _order(request: HttpRequest, pk: int) -> Order:
    return get_object_or_404(selectors.orders_visible_to(user=request.user), pk=pk)


@login_required
@require_POST
def order_cancel(request: HttpRequest, pk: int) -> HttpResponse:
    order = _order(request, pk)
    try:
        order = services.order_cancel(order_id=order.pk)
    except services.OrderRefused as e:
        messages.error(request, str(e))
    else:
        messages.info(request, f"Order {order.pk}: {order.get_status_display().lower()}. {order.last_error}".strip())
    return _back(request)


@login_required
def order_modify(request: HttpRequest, pk: int) -> HttpResponse:
    order = _order(request, pk)
    initial = {
        "pricetype": order.pricetype,
        "quantity": order.quantity,
        "price": order.price,
        "trigger_price": order.trigger_price,
    }
    form = ModifyForm(request.POST or None, initial=initial)
    if request.method == "POST" and form.is_valid():
        d = form.cleaned_data
        try:
            order = services.order_modify(
                order_id=order.pk,
                pricetype=d["pricetype"],
                quantity=d["quantity"],
                price=d.get("price") or Decimal(0),
                trigger_price=d.get("trigger_price") or Decimal(0),
            )
        except services.OrderRefused as e:
            form.add_error(None, str(e))
        else:
            if order.last_error:
                messages.error(request, order.last_error)
            else:
                messages.success(request, f"Order {order.pk} modified.")
            return redirect(f"{reverse('books')}?tab=orders&status=live")
    return render(request, "trading/order_modify.html", {"form": form, "order": order})


@login_required
@require_POST
def position_close(request: HttpRequest, pk: int) -> HttpResponse:
    pos = get_object_or_404(Position.objects.filter(account__in=account_list_visible_to(user=request.user)), pk=pk)
    try:
        batch = services.position_close(user=request.user, position_id=pos.pk)
    except services.OrderRefused as e:
        messages.error(request, str(e))
        return _back(request)
    messages.success(request, f"Exit for {pos.symbol} queued (reduce-only).")
    return redirect("batch_detail", pk=batch.pk)


@login_required
@require_POST
def account_cancel_all(request: HttpRequest, pk: int) -> HttpResponse:
    from .tasks import orders_cancel_all_task

    account = _account(request, pk)
    orders_cancel_all_task.delay(account.pk)
    messages.info(request, f"Cancelling every open order on {account.name}.")
    return _back(request)


@login_required
@require_POST
def account_close(request: HttpRequest, pk: int) -> HttpResponse:
    """Close everything in one account (fan-out through Celery, so a slow broker never blocks the page)."""
    account = _account(request, pk)
    services.account_close_request(user=request.user, account_id=account.pk, request=request)
    messages.info(request, f"Closing everything on {account.name}: open orders cancelled, positions exited.")
    return _back(request)


@login_required
@require_POST
def account_state(request: HttpRequest, pk: int) -> HttpResponse:
    account = _account(request, pk)
    form = TradingStateForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Choose active, reducing only or halted.")
        return _back(request)
    account = services.account_trading_state_set(
        user=request.user, account_id=account.pk, state=form.cleaned_data["state"], reason=form.cleaned_data["reason"]
    )
    messages.success(request, f"{account.name} is now {account.get_trading_state_display().lower()}.")
    return _back(request)


@login_required
@require_POST
def position_repair(request: HttpRequest, pk: int) -> HttpResponse:
    account = _account(request, pk)
    form = RepairForm(request.POST)
    if not form.is_valid():
        messages.error(request, "That repair request is incomplete; nothing was changed.")
        return _back(request)
    d = form.cleaned_data
    try:
        pos = services.position_repair(
            user=request.user,
            account_id=account.pk,
            exchange=d["exchange"],
            symbol=d["symbol"],
            product=d["product"],
            expected_ours=d["ours"],
            expected_broker=d["broker"],
        )
    except services.OrderRefused as e:
        messages.error(request, str(e))
    else:
        messages.success(request, f"{pos.symbol} on {account.name} now follows the broker: {pos.quantity}.")
    return _back(request)


@login_required
@require_POST
def books_refresh(request: HttpRequest) -> HttpResponse:
    from .tasks import account_books_refresh_task

    for a in account_list_visible_to(user=request.user).filter(is_active=True):
        account_books_refresh_task.delay(a.pk)
    messages.info(request, "Reading every account's books from its broker.")
    return _back(request)
