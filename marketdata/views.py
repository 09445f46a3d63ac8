"""Option chain, feed monitor and trading-calendar pages."""

from __future__ import annotations

import datetime as dt
import time

from django.conf import settings
from django.contrib import messages
from django.contrib.admin.views.decorators import staff_member_required
from django.contrib.auth.decorators import login_required
from django.db import IntegrityError
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_POST

from accounts import crypto
from accounts.selectors import account_data_source, account_list_visible_to
from accounts.services import account_client

from . import feedwords, selectors, services, store
from .forms import HolidayForm, SpecialSessionForm, day
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
    return render(request, "marketdata/feed_monitor.html", _feed_view(request.user))


@login_required
def feed_status_json(request: HttpRequest) -> JsonResponse:
    view = _feed_view(request.user)
    market = view["market"]
    return JsonResponse(
        {
            "status": view["status"],
            "events": view["events"],
            "dropped": view["dropped"],
            "market": {
                "state": market.state,
                "label": market.label,
                "next_open": market.next_open.isoformat() if market.next_open else None,
            },
        }
    )


def _feed_view(user) -> dict:
    """The feed's status and events with the words the page shows (`headline`, its `badge`, and a
    `title` and `detail` per event) next to the recorded fields; as `user` may see them (an
    administrator everything, anyone else their own accounts and instruments only)."""
    status = store.feed_status()
    events = store.feed_events(50)
    dropped = selectors.interest_dropped_visible_to(user)
    if not user.is_staff:
        status, events = selectors.feed_seen_by(
            status, events, account_ids=set(account_list_visible_to(user=user).values_list("pk", flat=True)), user=user
        )
    status["headline"], status["tone"] = feedwords.headline(status, now_ms=int(time.time() * 1000))
    status["badge_class"], status["badge"] = feedwords.BADGES[status["tone"]]
    return {
        "status": status,
        "events": [feedwords.event(e) for e in events],
        "dropped": dropped,
        "market": selectors.market_status_now(),
    }


# ------------------------------------------------------------------ trading calendar
KINDS = {"holiday": (MarketHoliday, "holiday"), "special": (SpecialTradingSession, "special session")}


def _calendar(request: HttpRequest, holiday_form=None, special_form=None, *, status: int = 200) -> HttpResponse:
    return render(
        request,
        "marketdata/calendar.html",
        {
            "templates": TradingHoursTemplate.objects.prefetch_related("sessions"),
            "holidays": MarketHoliday.objects.filter(date__gte=timezone.localdate() - dt.timedelta(days=400)),
            "specials": SpecialTradingSession.objects.all(),
            "holiday_form": holiday_form or HolidayForm(),
            "special_form": special_form or SpecialSessionForm(),
            "market": selectors.market_status_now(),
            "always_open": settings.MARKET_CALENDAR == "always_open",
        },
        status=status,
    )


@staff_member_required
def calendar_page(request: HttpRequest) -> HttpResponse:
    return _calendar(request)


@staff_member_required
@require_POST
def holiday_add(request: HttpRequest) -> HttpResponse:
    form = HolidayForm(request.POST)
    if form.is_valid():
        d = form.cleaned_data
        try:
            h = services.holiday_add(date=d["date"], name=d["name"], market=d["market"])
        except IntegrityError:  # added by someone else since the form looked
            existing = selectors.holiday_on(d["date"], d["market"])
            form.add_error(None, HolidayForm.duplicate(existing) if existing else "Someone else just changed that day.")
        else:
            messages.success(request, f"Added the holiday {h.name} ({h.market}) on {day(h.date)}.")
            return redirect("marketdata_calendar")
    return _calendar(request, holiday_form=form)


@staff_member_required
@require_POST
def special_add(request: HttpRequest) -> HttpResponse:
    form = SpecialSessionForm(request.POST)
    if form.is_valid():
        d = form.cleaned_data
        try:
            s = services.special_add(date=d["date"], name=d["name"], market=d["market"], start=d["start"], end=d["end"])
        except IntegrityError:
            existing = selectors.special_named(d["date"], d["market"], d["name"])
            form.add_error(
                None, SpecialSessionForm.duplicate(existing) if existing else "Someone else just changed that day."
            )
        else:
            messages.success(
                request,
                f"Added the special session {s.name} ({s.market}) on {day(s.date)}, {s.start:%H:%M}–{s.end:%H:%M} IST.",
            )
            return redirect("marketdata_calendar")
    return _calendar(request, special_form=form)


@staff_member_required
def calendar_delete(request: HttpRequest, kind: str, pk: int) -> HttpResponse:
    """GET asks (a page, so it works from the keyboard and without scripts); POST deletes."""
    if kind not in KINDS:
        raise Http404
    model, what = KINDS[kind]
    entry = model.objects.filter(pk=pk).first()
    if request.method == "POST":
        if entry is None:
            messages.info(request, f"That {what} was already deleted.")
        else:
            services.calendar_entry_delete(entry)
            messages.success(request, f"Deleted the {what} {entry.name} ({entry.market}, {day(entry.date)}).")
        return redirect("marketdata_calendar")
    if entry is None:
        raise Http404
    return render(request, "marketdata/calendar_confirm_delete.html", {"entry": entry, "what": what, "kind": kind})
