"""Orders across accounts, their live progress, and the books."""

from __future__ import annotations

from decimal import Decimal

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_POST

from accounts.selectors import account_list_visible_to

from . import exports, presenters, selectors, services
from .forms import ClientTokenForm, ModifyForm, OrderForm, RepairForm, TradingStateForm, one_time_token
from .models import Order, Position


def _client_token(request: HttpRequest) -> str:
    """The posted one-time token ("" when missing or malformed: no duplicate guard then)."""
    form = ClientTokenForm(request.POST)
    return form.cleaned_data["client_token"] if form.is_valid() else ""


# Never cached: Back shows a fresh render (a new token) where the browser allows it; where it
# restores the old page anyway, the token's digest of the terms still tells a repeat from an edit.
@never_cache
@login_required
def order_new(request: HttpRequest) -> HttpResponse:
    form = OrderForm(request.POST or None, user=request.user)
    if request.method == "POST" and form.is_valid():
        d = form.cleaned_data
        leg = services.Leg(
            d["symbol"],
            d["exchange"],
            d["action"],
            d.get("quantity") or 0,
            d["pricetype"],
            d["product"],
            d.get("price") or Decimal(0),
            d.get("trigger_price") or Decimal(0),
            lots=d.get("lots") or 0,
        )
        try:
            batch = services.orders_create(
                user=request.user, accounts=list(d["accounts"]), legs=[leg], client_token=form.batch_token()
            )
        except services.OrderRefused as e:
            form.add_error(None, str(e))
        else:
            if batch.repeat:
                messages.info(request, "This order was already placed (the form was sent twice): nothing new was sent.")
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
ROW_URLS = ("order_cancel", "order_modify", "batch_detail")


def _int(value) -> int | None:
    try:
        return int(value or 0) or None
    except (TypeError, ValueError):
        return None


def _positions(user, g, f) -> dict:
    open_only = g.get("open") == "1"
    rows, subtotals, totals = selectors.positions_page(user=user, open_only=open_only, **f)
    return {
        "rows": rows,
        "open_only": open_only,
        "display": presenters.position_rows(rows, presenters.row_url("position_close")),
        "subtotals": presenters.position_subtotals(subtotals),
        "summary": presenters.positions_summary(subtotals, totals),
        "flags": selectors.reconciliation_flags(user=user, account_id=f["account_id"]),
    }


def _orders(user, g, f) -> dict:
    status = g.get("status", "")
    full = g.get("export") == "orders"
    orders = selectors.order_list(user=user, status=status, limit=None if full else 200, **f)
    return {
        "rows": orders,
        "display": [] if full else presenters.order_rows(orders, {n: presenters.row_url(n) for n in ROW_URLS}),
        "statuses": [("live", "Open / working")] + [c for c in Order.Status.choices if c[0] != "split"],
    }


def _broker_book(kind: str):
    def tab(user, g, f) -> dict:
        rows, copies = selectors.broker_book_rows(user=user, kind=kind, **f)
        totals = selectors.trade_totals(rows) if kind == "trades" else selectors.holding_totals(rows)
        return {"rows": rows, "copies": copies, "stale": [c for c in copies if not c.ok], "totals": totals}

    return tab


def _funds(user, g, f) -> dict:
    rows, totals = selectors.funds_rows(user=user, account_id=f["account_id"])
    return {"rows": rows, "totals": totals}


TAB_CONTEXT = {
    "positions": _positions,
    "orders": _orders,
    "trades": _broker_book("trades"),
    "holdings": _broker_book("holdings"),
    "funds": _funds,
}


@login_required
def books(request: HttpRequest) -> HttpResponse:
    """One page, five books, all accounts or one; every filter and sort is in the URL.
    `?export=<tab>` is the tab as CSV; `?fragment=positions` is the live part of the positions
    tab alone, which the page fetches when a fill brings a row it does not show."""
    g = request.GET
    tab = g.get("tab") if g.get("tab") in TABS else "positions"
    accounts = list(account_list_visible_to(user=request.user))
    account_id = _int(g.get("account"))
    if account_id not in {a.pk for a in accounts}:
        account_id = None
    f = {"account_id": account_id, "symbol": g.get("symbol", "").strip()[:40], "sort": g.get("sort", "")}
    ctx: dict = {"tab": tab, "tabs": TABS, "accounts": accounts, "f": f, "status": g.get("status", "")}
    ctx["account"] = next((a for a in accounts if a.pk == account_id), None)
    ctx["close_token"] = one_time_token()
    ctx |= TAB_CONTEXT[tab](request.user, g, f)
    if g.get("export") == tab:
        return exports.books_csv(tab, ctx["rows"])
    if tab == "positions" and g.get("fragment") == "positions":
        return render(request, "trading/books/positions_live.html", ctx)
    return render(request, "trading/books.html", ctx)


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
    token = _client_token(request)
    try:
        # The token is scoped to the position: one page's tokens are never shared between rows.
        batch = services.position_close(
            user=request.user, position_id=pos.pk, client_token=f"{token}:close:p{pos.pk}" if token else ""
        )
    except services.OrderRefused as e:
        messages.error(request, str(e))
        return _back(request)
    if batch.repeat:
        messages.info(request, f"This exit for {pos.symbol} was already placed: nothing new was sent.")
    else:
        messages.success(request, f"Exit for {pos.symbol} queued (reduce-only).")
    return redirect("batch_detail", pk=batch.pk)


@login_required
@require_POST
def account_cancel_all(request: HttpRequest, pk: int) -> HttpResponse:
    account = _account(request, pk)
    services.orders_cancel_all_request(account_id=account.pk)
    messages.info(request, f"Cancelling every open order on {account.name}.")
    return _back(request)


@login_required
@require_POST
def account_close(request: HttpRequest, pk: int) -> HttpResponse:
    """Close everything in one account (fan-out through Celery, so a slow broker never blocks the page)."""
    account = _account(request, pk)
    if services.account_close_request(
        user=request.user, account_id=account.pk, request=request, client_token=_client_token(request)
    ):
        messages.info(request, f"Closing everything on {account.name}: open orders cancelled, positions exited.")
    else:
        messages.info(request, f"Closing everything on {account.name} was already requested: not started twice.")
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
    accounts = account_list_visible_to(user=request.user).filter(is_active=True)
    services.books_refresh_request(account_ids=list(accounts.values_list("pk", flat=True)))
    messages.info(request, "Reading every account's books from its broker.")
    return _back(request)
