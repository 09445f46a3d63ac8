"""Orders across accounts, their live progress, and the books."""

from __future__ import annotations

from decimal import Decimal

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_POST

from accounts.security import safe_next_url
from accounts.selectors import account_list_visible_to

from . import exports, presenters, selectors, services
from .forms import ClientTokenForm, ModifyForm, OrderForm, RepairForm, TradingStateForm, one_time_token
from .models import Order, Position


def _confirmed(request: HttpRequest) -> bool:
    """A money-moving POST acts only once the trader has seen what it will do: the confirmation
    step (a server-rendered page, shown as a modal dialog where JavaScript runs) posts it back
    with `confirmed=1`."""
    return request.POST.get("confirmed") == "1"


def _confirm_page(
    request: HttpRequest,
    *,
    title: str,
    intro: str,
    items: list[dict],
    label: str,
    back: str,
    fields: dict | None = None,
    danger: bool = False,
    extra: str = "",
) -> HttpResponse:
    """The confirmation step: each account × side × quantity × price × estimated value, and one
    button that posts the same request again, confirmed (focused; Esc or Back cancels)."""
    ltps = selectors.fresh_ltps([f"{i['exchange']}:{i['symbol']}" for i in items])
    hidden = {k: v for k, v in request.POST.items() if k not in ("csrfmiddlewaretoken", "confirmed")}
    hidden |= fields or {}
    return render(
        request,
        "trading/confirm.html",
        {
            "confirm": {
                "title": title,
                "intro": intro,
                "extra": extra,
                "label": label,
                "back": back,
                "danger": danger,
                "action": request.get_full_path(),
                "hidden": sorted(hidden.items()),
                **presenters.confirm_rows(items, ltps),
            }
        },
    )


def _next_url(request: HttpRequest, default: str) -> str:
    return safe_next_url(request, default)


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
        skip = d.get("skip_entries", False)
        if not _confirmed(request):
            try:
                # Refused now, before the confirmation, for what the order itself would be refused
                # for; lots become each account's own quantity (its broker's lot size), as sent.
                plan = services.orders_check(accounts=list(d["accounts"]), legs=[leg], skip_entries=skip)
            except services.OrderRefused as e:
                form.add_error(None, str(e))
                return render(request, "trading/order_new.html", {"form": form})
            items = [
                {
                    "account": a.name,
                    "action": leg.action,
                    "quantity": plan.quantities[(a.pk, 0)],
                    "symbol": leg.symbol,
                    "exchange": leg.exchange,
                    "pricetype": leg.pricetype,
                    "price": leg.price,
                    "trigger_price": leg.trigger_price,
                    "note": "exit: reduce-only, never more than the broker holds" if (a.pk, 0) in plan.exits else "",
                }
                for a in plan.accounts
            ]
            ltps = selectors.fresh_ltps([f"{leg.exchange}:{leg.symbol}"])
            confirm = {
                "title": f"Place {leg.action} {leg.quantity or f'{leg.lots} lot(s) of'} {leg.symbol} "
                f"on {len(items)} account(s)?",
                "intro": f"{leg.exchange} · {leg.pricetype} · {leg.product}. Each account gets its own order.",
                "label": "Place order",
                "action": request.get_full_path(),
                "hidden": [(k, v) for k, vs in request.POST.lists() if k != "csrfmiddlewaretoken" for v in vs],
                "skipped": [s.as_json() for s in plan.skipped],
                **presenters.confirm_rows(items, ltps),
            }
            return render(request, "trading/order_new.html", {"form": form, "confirm": confirm})
        try:
            batch = services.orders_create(
                user=request.user,
                accounts=list(d["accounts"]),
                legs=[leg],
                client_token=form.batch_token(),
                skip_entries=skip,
            )
        except services.OrderRefused as e:
            form.add_error(None, str(e))
        else:
            name = selectors.group_id(batch.pk)
            if batch.repeat:
                messages.info(request, f"{name} was already placed (the form was sent twice): nothing new was sent.")
            else:
                # Sent, not done: the page's summary says what each broker made of it.
                n = batch.orders.values("account").distinct().count()
                messages.info(
                    request, f"{name} sent to {n} account{'s' if n != 1 else ''}: each broker's answer follows."
                )
            for s in batch.skipped:
                messages.warning(request, f"{name} skipped {s['account']}: {s['why']}.")
            return redirect("batch_detail", pk=batch.pk)
    return render(request, "trading/order_new.html", {"form": form})


def _batch(request: HttpRequest, pk: int):
    batch = selectors.batch_get(user=request.user, pk=pk)
    if batch is None:
        raise Http404("No such order")
    return batch


@login_required
def batch_detail(request: HttpRequest, pk: int) -> HttpResponse:
    """A mirrored order as one thing: its id (M-2), its terms, each account's orders live, the
    per-account outcome with Retry, and cancel-all / modify-all for what is still working."""
    batch = _batch(request, pk)
    retry_url = presenters.row_url_pair("batch_retry", batch.pk)
    summary = presenters.batch_summary(
        selectors.batch_outcome(batch_id=batch.pk), selectors.batch_retries(batch_id=batch.pk), retry_url
    )
    live = selectors.batch_live_orders(batch_id=batch.pk)
    retried_from = presenters.retried_from(batch)
    return render(
        request,
        "trading/batch_detail.html",
        {
            "batch": batch,
            "group": selectors.group_id(batch.pk),
            "terms": presenters.batch_terms(selectors.batch_terms(batch_id=batch.pk)),
            "rows": selectors.batch_rows(batch_id=batch.pk),
            "summary": summary,
            "live_count": len(live),
            "modifiable": any(o.status in selectors.LIVE_STATUSES for o in live),
            "retried_from": retried_from,
        },
    )


@login_required
@require_POST
def batch_retry(request: HttpRequest, pk: int, account_id: int) -> HttpResponse:
    """Retry what the batch left undone on one account (confirmed first; exactly once)."""
    batch = _batch(request, pk)
    account = _account(request, account_id)
    back = reverse("batch_detail", args=[batch.pk])
    name = selectors.group_id(batch.pk)
    if not _confirmed(request):
        entry = next((a for a in selectors.batch_outcome(batch_id=batch.pk) if a["account_id"] == account.pk), None)
        if entry is not None and (why := selectors.retry_refusal(entry)):
            messages.error(request, why)
            return redirect(back)
        legs = [leg for leg in (entry or {}).get("legs", []) if selectors.leg_retryable(leg)]
        items = [
            {
                "account": account.name,
                "action": leg["action"],
                "quantity": leg["left"],
                "symbol": leg["symbol"],
                "exchange": leg["exchange"],
                "pricetype": leg["order"].pricetype,
                "price": leg["order"].price,
                "trigger_price": leg["order"].trigger_price,
                "note": "reduce-only" if leg["exit"] else "",
            }
            for leg in legs
        ]
        return _confirm_page(
            request,
            title=f"Retry what {name} left on {account.name}?",
            intro="Only what is still open or was not placed is sent again, once."
            + (" Exits are reduce-only: never more than the broker still holds." if batch.kind == "exit" else ""),
            items=items,
            label="Retry",
            back=back,
            danger=batch.kind == "exit",
        )
    try:
        retry = services.batch_retry(user=request.user, batch_id=batch.pk, account_id=account.pk)
    except services.OrderRefused as e:
        messages.error(request, str(e))
        return redirect(back)
    new = selectors.group_id(retry.pk)
    if retry.repeat:
        messages.info(request, f"{name} on {account.name} was already retried as {new}: nothing new was sent.")
    else:
        messages.info(request, f"Retry of {name} on {account.name} sent as {new}: its outcome follows.")
    return redirect("batch_detail", pk=retry.pk)


def _outcome_messages(request: HttpRequest, name: str, verb: str, outcomes: list[dict]) -> None:
    """One message per account: what its broker answered (never "done" for what is not)."""
    if not outcomes:
        messages.info(request, f"{name}: nothing is working any more, nothing to {verb}.")
        return
    for o in outcomes:
        level = messages.success if o["ok"] else messages.error
        level(request, f"{name} · {o['account']} · {o['symbol']}: {o['text']}")


@login_required
@require_POST
def batch_cancel_all(request: HttpRequest, pk: int) -> HttpResponse:
    batch = _batch(request, pk)
    name = selectors.group_id(batch.pk)
    back = reverse("batch_detail", args=[batch.pk])
    if not _confirmed(request):
        items = [
            {
                "account": o.account.name,
                "action": o.action,
                "quantity": o.quantity - o.filled_quantity,
                "symbol": o.symbol,
                "exchange": o.exchange,
                "pricetype": o.pricetype,
                "price": o.price,
                "trigger_price": o.trigger_price,
                "note": o.get_status_display(),
            }
            for o in selectors.batch_live_orders(batch_id=batch.pk)
        ]
        return _confirm_page(
            request,
            title=f"Cancel every working order of {name}?",
            intro="What has filled stays filled; each account's answer is shown after.",
            items=items,
            label=f"Cancel {len(items)} order{'s' if len(items) != 1 else ''}",
            back=back,
            danger=True,
        )
    _outcome_messages(request, name, "cancel", services.batch_cancel_all(batch_id=batch.pk, user=request.user))
    return redirect(back)


class GroupModifyForm(forms.Form):
    """New terms for every working order of a mirrored order (quantity optional: kept if blank)."""

    pricetype = forms.ChoiceField(choices=Order.PriceType.choices, label="Order type")
    price = forms.DecimalField(required=False, min_value=0, max_digits=14, decimal_places=2)
    trigger_price = forms.DecimalField(required=False, min_value=0, max_digits=14, decimal_places=2)
    quantity = forms.IntegerField(required=False, min_value=1, max_value=1_000_000, help_text="Blank: unchanged.")

    def clean(self):
        d = super().clean()
        if d.get("pricetype") in ("LIMIT", "SL") and not d.get("price"):
            self.add_error("price", "A limit price is required for this order type.")
        if d.get("pricetype") in ("SL", "SL-M") and not d.get("trigger_price"):
            self.add_error("trigger_price", "A trigger price is required for stop orders.")
        return d


@login_required
def batch_modify_all(request: HttpRequest, pk: int) -> HttpResponse:
    batch = _batch(request, pk)
    name = selectors.group_id(batch.pk)
    live = [o for o in selectors.batch_live_orders(batch_id=batch.pk) if o.status in selectors.LIVE_STATUSES]
    first = live[0] if live else None
    initial = (
        {"pricetype": first.pricetype, "price": first.price, "trigger_price": first.trigger_price} if first else {}
    )
    form = GroupModifyForm(request.POST or None, initial=initial)
    if request.method == "POST" and form.is_valid():
        d = form.cleaned_data
        try:
            outcomes = services.batch_modify_all(
                batch_id=batch.pk,
                pricetype=d["pricetype"],
                price=d.get("price") or Decimal(0),
                trigger_price=d.get("trigger_price") or Decimal(0),
                quantity=d.get("quantity"),
                user=request.user,
            )
        except services.OrderRefused as e:
            form.add_error("quantity", str(e))
        else:
            _outcome_messages(request, name, "modify", outcomes)
            return redirect("batch_detail", pk=batch.pk)
    return render(
        request,
        "trading/batch_modify.html",
        {"form": form, "batch": batch, "group": name, "orders": presenters.order_rows(live)},
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
    return redirect(safe_next_url(request, reverse(default)))


def _account(request: HttpRequest, pk: int):
    return get_object_or_404(account_list_visible_to(user=request.user), pk=pk)


def _order(request: HttpRequest, pk: int) -> Order:
    return get_object_or_404(selectors.orders_visible_to(user=request.user), pk=pk)


@login_required
@require_POST
def order_cancel(request: HttpRequest, pk: int) -> HttpResponse:
    order = _order(request, pk)
    name = presenters.order_name(order)
    if not _confirmed(request):
        item = {
            "account": order.account.name,
            "action": order.action,
            "quantity": order.quantity - order.filled_quantity,
            "symbol": order.symbol,
            "exchange": order.exchange,
            "pricetype": order.pricetype,
            "price": order.price,
            "trigger_price": order.trigger_price,
            "note": order.get_status_display(),
        }
        return _confirm_page(
            request,
            title=f"Cancel {name}?",
            intro="What has filled stays filled.",
            items=[item],
            label="Cancel order",
            back=_next_url(request, reverse("books") + "?tab=orders&status=live"),
            danger=True,
        )
    try:
        order = services.order_cancel(order_id=order.pk, user=request.user)
    except services.OrderRefused as e:
        messages.error(request, str(e))
    else:
        status = order.get_status_display().lower()
        text = f"{name}: {status}" + (f" — {order.last_error}" if order.last_error else "")
        (messages.success if order.status == Order.Status.CANCELLED else messages.warning)(request, text)
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
                user=request.user,
            )
        except services.OrderRefused as e:
            form.add_error(None, str(e))
        else:
            name = presenters.order_name(order)
            if order.last_error:
                messages.error(request, f"{name}: {order.last_error}")
            else:
                messages.success(request, f"{name} modified: {order.quantity} {presenters.order_terms(order)} ✓")
            return redirect(f"{reverse('books')}?tab=orders&status=live")
    return render(
        request, "trading/order_modify.html", {"form": form, "order": order, "name": presenters.order_name(order)}
    )


@login_required
@require_POST
def position_close(request: HttpRequest, pk: int) -> HttpResponse:
    pos = get_object_or_404(Position.objects.filter(account__in=account_list_visible_to(user=request.user)), pk=pk)
    if not _confirmed(request) and pos.quantity:
        item = {
            "account": pos.account.name,
            "action": "SELL" if pos.quantity > 0 else "BUY",
            "quantity": abs(pos.quantity),
            "symbol": pos.symbol,
            "exchange": pos.exchange,
            "pricetype": "MARKET",
            "note": f"reduce-only · {pos.product}",
        }
        return _confirm_page(
            request,
            title=f"Exit {pos.symbol} on {pos.account.name} at market?",
            intro="Reduce-only: never more than the broker still holds.",
            items=[item],
            label="Exit position",
            back=_next_url(request, reverse("books")),
            danger=True,
        )
    token = _client_token(request)
    try:
        # The token is scoped to the position: one page's tokens are never shared between rows.
        batch = services.position_close(
            user=request.user, position_id=pos.pk, client_token=f"{token}:close:p{pos.pk}" if token else ""
        )
    except services.OrderRefused as e:
        messages.error(request, str(e))
        return _back(request)
    name = selectors.group_id(batch.pk)
    if batch.repeat:
        messages.info(request, f"This exit for {pos.symbol} was already placed as {name}: nothing new was sent.")
    else:
        messages.info(request, f"Exit for {pos.symbol} sent as {name} (reduce-only): the summary says when it is flat.")
    return redirect("batch_detail", pk=batch.pk)


@login_required
@require_POST
def account_cancel_all(request: HttpRequest, pk: int) -> HttpResponse:
    account = _account(request, pk)
    if not _confirmed(request):
        orders = selectors.orders_visible_to(user=request.user, account_id=account.pk).filter(
            status__in=selectors.LIVE_STATUSES
        )
        items = [
            {
                "account": account.name,
                "action": o.action,
                "quantity": o.quantity - o.filled_quantity,
                "symbol": o.symbol,
                "exchange": o.exchange,
                "pricetype": o.pricetype,
                "price": o.price,
                "trigger_price": o.trigger_price,
                "note": selectors.group_id(o.batch_id),
            }
            for o in orders
        ]
        return _confirm_page(
            request,
            title=f"Cancel every open order on {account.name}?",
            intro="Including orders placed outside AlgoMirror, which are not listed here.",
            items=items,
            label="Cancel all orders",
            back=_next_url(request, reverse("books")),
            danger=True,
        )
    try:
        services.account_client_or_refuse(account)  # a key that no longer decrypts: say so, queue nothing
    except services.OrderRefused as e:
        messages.error(request, str(e))
        return _back(request)
    services.account_cancel_all_request(user=request.user, account_id=account.pk, request=request)
    messages.info(
        request, f"Cancel-all sent to {account.name}'s broker: the orders tab shows each order's status as it answers."
    )
    return _back(request)


@login_required
@require_POST
def account_close(request: HttpRequest, pk: int) -> HttpResponse:
    """Close everything in one account (fan-out through Celery, so a slow broker never blocks the page)."""
    account = _account(request, pk)
    if not _confirmed(request):
        positions = Position.objects.filter(account=account).exclude(quantity=0).order_by("symbol")
        items = [
            {
                "account": account.name,
                "action": "SELL" if p.quantity > 0 else "BUY",
                "quantity": abs(p.quantity),
                "symbol": p.symbol,
                "exchange": p.exchange,
                "pricetype": "MARKET",
                "note": f"reduce-only · {p.product}",
            }
            for p in positions
        ]
        return _confirm_page(
            request,
            title=f"Close everything on {account.name}?",
            intro="Open orders are cancelled, then every position the broker shows is exited at market "
            "(shorts bought back first). Reduce-only: never more than the broker still holds.",
            extra="The broker's positionbook is read when the close-out runs: a position it shows that AlgoMirror "
            "did not place is exited too.",
            items=items,
            label="Close everything",
            back=_next_url(request, reverse("books")),
            danger=True,
        )
    try:
        services.account_client_or_refuse(account)  # a key that no longer decrypts: say so, queue nothing
    except services.OrderRefused as e:
        messages.error(request, str(e))
        return _back(request)
    ticket, new = services.account_close_start(
        user=request.user, account_id=account.pk, request=request, client_token=_client_token(request)
    )
    if not new:
        messages.info(request, f"Closing everything on {account.name} was already requested: not started twice.")
    return redirect("account_closing", pk=account.pk, ticket=ticket)


@login_required
def account_closing(request: HttpRequest, pk: int, ticket: str) -> HttpResponse:
    """Where "close everything" leads: while the worker cancels and reads the broker, a page that
    looks again every second (no script needed); then the exit's own page with its per-account
    summary, or the final word when nothing was open or the close-out was refused."""
    account = _account(request, pk)
    state = services.close_ticket(ticket)
    if state is None or state.get("account_id") != account.pk:
        raise Http404("No such close-out")
    if state["state"] == "batch":
        return redirect("batch_detail", pk=state["batch"])
    return render(request, "trading/account_closing.html", {"account": account, "state": state})


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
    if request.headers.get("X-Requested-With") == "fetch":
        return HttpResponse(status=204)  # the page follows the copies itself (books.js)
    messages.info(request, "Reading every account's books from its broker: the tabs show each copy's time.")
    return _back(request)
