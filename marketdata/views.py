"""Option chain, feed monitor and trading-calendar pages."""

from __future__ import annotations

import datetime as dt

from django.conf import settings
from django.contrib import messages
from django.contrib.admin.views.decorators import staff_member_required
from django.contrib.auth.decorators import login_required
from django.db import IntegrityError
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_POST

from accounts import crypto
from accounts.selectors import account_data_source
from accounts.services import account_client

from . import selectors, store
from .forms import HolidayForm, SpecialSessionForm
from .models import MarketHoliday, SpecialTradingSession, TradingHoursTemplate

UNDERLYINGS = {"NIFTY": ("NSE_INDEX", "NFO"), "BANKNIFTY": ("NSE_INDEX", "NFO"), "SENSEX": ("BSE_INDEX", "BFO")}


@login_required
def option_chain(request: HttpRequest) -> HttpResponse:
    underlying = request.GET.get("underlying", "NIFTY").upper()
    if underlying not in UNDERLYINGS:
        underlying = "NIFTY"
    try:
        strikes = min(max(int(request.GET.get("strikes", 10)), 1), 20)
    except ValueError:
        strikes = 10
    ctx = {
        "underlyings": list(UNDERLYINGS),
        "underlying": underlying,
        "strikes": strikes,
        "expiries": [],
        "chain": None,
        "error": "",
        "price_max_age": settings.PRICE_MAX_AGE,
        "strike_choices": [5, 10, 15, 20],
    }
    account = account_data_source(user=request.user)
    if account is None:
        ctx["error"] = "Add a connected OpenAlgo account to see option chains."
        return render(request, "marketdata/option_chain.html", ctx)
    try:
        client = account_client(account)
    except crypto.KeyUnreadable:
        ctx["error"] = f"{account.name}'s API key is unreadable; re-enter it on the account page."
        return render(request, "marketdata/option_chain.html", ctx)
    spot_exchange, fo_exchange = UNDERLYINGS[underlying]
    exp = client.call("expiry", symbol=underlying, exchange=fo_exchange, instrumenttype="options")
    if not exp.ok:
        ctx["error"] = f"{account.name} could not list expiries: {exp.message or exp.reason}"
        return render(request, "marketdata/option_chain.html", ctx)
    expiries = [e.replace("-", "") for e in exp.data or []]
    expiry = request.GET.get("expiry", "").upper()
    if expiry not in expiries:
        expiry = expiries[0] if expiries else ""
    ctx.update(expiries=expiries, expiry=expiry, account=account)
    res = client.call(
        "optionchain", underlying=underlying, exchange=spot_exchange, expiry_date=expiry, strike_count=strikes
    )
    if not res.ok:
        ctx["error"] = f"{account.name} could not load the chain: {res.message or res.reason}"
        return render(request, "marketdata/option_chain.html", ctx)
    chain = res.body
    ce_oi = sum((row.get("ce") or {}).get("oi", 0) or 0 for row in chain["chain"])
    pe_oi = sum((row.get("pe") or {}).get("oi", 0) or 0 for row in chain["chain"])
    ctx.update(
        chain=chain,
        fo_exchange=fo_exchange,
        spot_key=f"{spot_exchange}:{underlying}",
        pcr=round(pe_oi / ce_oi, 2) if ce_oi else None,
    )
    return render(request, "marketdata/option_chain.html", ctx)


@login_required
def feed_monitor(request: HttpRequest) -> HttpResponse:
    return render(
        request,
        "marketdata/feed_monitor.html",
        {"status": store.feed_status(), "events": store.feed_events(50), "market": selectors.market_status_now()},
    )


@login_required
def feed_status_json(request: HttpRequest) -> JsonResponse:
    status = store.feed_status()
    events = store.feed_events(50)
    market = selectors.market_status_now()
    return JsonResponse(
        {
            "status": status,
            "events": events,
            "market": {
                "state": market.state,
                "label": market.label,
                "next_open": market.next_open.isoformat() if market.next_open else None,
            },
        }
    )


@staff_member_required
def calendar_page(request: HttpRequest) -> HttpResponse:
    return render(
        request,
        "marketdata/calendar.html",
        {
            "templates": TradingHoursTemplate.objects.prefetch_related("sessions"),
            "holidays": MarketHoliday.objects.filter(date__gte=timezone.localdate() - dt.timedelta(days=400)),
            "specials": SpecialTradingSession.objects.all(),
            "holiday_form": HolidayForm(),
            "special_form": SpecialSessionForm(),
            "market": selectors.market_status_now(),
            "always_open": settings.MARKET_CALENDAR == "always_open",
        },
    )


def _saved(request, form, what: str):
    if form.is_valid():
        try:
            form.save()
        except IntegrityError:
            messages.error(request, f"That {what} already exists.")
        else:
            selectors.calendar_invalidate()
            messages.success(request, f"Added the {what}.")
    else:
        messages.error(
            request, f"Could not add the {what}: " + "; ".join(f"{k}: {' '.join(v)}" for k, v in form.errors.items())
        )
    return redirect("marketdata_calendar")


@staff_member_required
@require_POST
def holiday_add(request: HttpRequest) -> HttpResponse:
    return _saved(request, HolidayForm(request.POST), "holiday")


@staff_member_required
@require_POST
def special_add(request: HttpRequest) -> HttpResponse:
    return _saved(request, SpecialSessionForm(request.POST), "special session")


@staff_member_required
@require_POST
def calendar_delete(request: HttpRequest, kind: str, pk: int) -> HttpResponse:
    model = {"holiday": MarketHoliday, "special": SpecialTradingSession}.get(kind)
    if model is not None:
        model.objects.filter(pk=pk).delete()
        selectors.calendar_invalidate()
        messages.success(request, "Deleted.")
    return redirect("marketdata_calendar")
