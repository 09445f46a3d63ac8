"""Orders across accounts, their live progress, and the books."""

from __future__ import annotations

import csv
from decimal import Decimal

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render

from accounts.selectors import account_list_visible_to

from . import selectors, services
from .forms import OrderForm


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
    orders = batch.orders.select_related("account").order_by("account__name", "pk")
    return render(
        request,
        "trading/batch_detail.html",
        {"batch": batch, "rows": [selectors.order_row(o) for o in orders if o.status != "split"]},
    )


def _account_filter(request: HttpRequest):
    try:
        account_id = int(request.GET.get("account") or 0) or None
    except ValueError:
        account_id = None
    return account_id


@login_required
def books(request: HttpRequest) -> HttpResponse:
    account_id = _account_filter(request)
    rows, totals = selectors.positions_with_pnl(user=request.user, account_id=account_id)
    orders = selectors.orders_visible_to(user=request.user, account_id=account_id).exclude(status="split")[:200]
    if request.GET.get("export") in ("positions", "orders"):
        return _csv(request.GET["export"], rows, orders)
    return render(
        request,
        "trading/books.html",
        {
            "rows": rows,
            "totals": totals,
            "orders": orders,
            "account_id": account_id,
            "unpriced": sum(1 for r in rows if r["pnl"] is None),
            "accounts": account_list_visible_to(user=request.user),
        },
    )


def _csv(kind: str, rows, orders) -> HttpResponse:
    resp = HttpResponse(content_type="text/csv")
    resp["Content-Disposition"] = f'attachment; filename="algomirror-{kind}.csv"'
    w = csv.writer(resp)
    if kind == "positions":
        w.writerow(
            [
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
            ]
        )
        for r in rows:
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
    else:
        w.writerow(
            [
                "time_ist",
                "account",
                "symbol",
                "exchange",
                "action",
                "quantity",
                "status",
                "broker_orderid",
                "filled",
                "average_price",
            ]
        )
        from django.utils import timezone

        for o in orders:
            w.writerow(
                [
                    timezone.localtime(o.created_at).strftime("%Y-%m-%d %H:%M:%S"),
                    o.account.name,
                    o.symbol,
                    o.exchange,
                    o.action,
                    o.quantity,
                    o.status,
                    o.broker_orderid or "",
                    o.filled_quantity,
                    o.average_price or "",
                ]
            )
    return resp
