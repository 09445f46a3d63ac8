"""The order form's live check: the instrument as a broker knows it (lot and tick size) and its
last price, asked while the trader types, so a wrong symbol or exchange shows before submitting.
The form checks again on submit; this is only what the page shows."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import HttpRequest, JsonResponse
from django.views.decorators.http import require_GET

from accounts.selectors import account_list_tradable

from .forms import EXCHANGES, SymbolField
from .services.validate import SymbolUnknown, instrument_check, last_price


@login_required
@require_GET
def symbol_check(request: HttpRequest) -> JsonResponse:
    field = SymbolField(regex=r"^[A-Z0-9&\-_.]{1,40}$", max_length=40)
    try:
        symbol = field.clean(request.GET.get("symbol", ""))
    except ValidationError:
        return JsonResponse({"ok": False, "message": "Use the OpenAlgo symbol, e.g. SBIN."}, status=400)
    exchange = request.GET.get("exchange", "")
    if exchange not in EXCHANGES:
        return JsonResponse({"ok": False, "message": "Choose an exchange."}, status=400)
    accounts = account_list_tradable(user=request.user)
    # ASCII digits only ("²".isdigit() is True, int("²") raises), and no more than a database
    # integer holds: anything else names no account of the user's.
    ids = [int(i) for i in request.GET.getlist("accounts") if i.isascii() and i.isdigit() and len(i) <= 18]
    chosen = list(accounts.filter(pk__in=ids)) if ids else list(accounts)
    try:
        instrument = instrument_check(accounts=chosen, symbol=symbol, exchange=exchange)
    except SymbolUnknown as e:
        return JsonResponse({"ok": False, "symbol": symbol, "message": str(e)})
    if instrument is None:
        return JsonResponse({"ok": None, "symbol": symbol, "message": "No chosen account answered: not checked."})
    ltp = last_price(accounts=chosen, symbol=symbol, exchange=exchange)
    return JsonResponse(
        {"ok": True, **instrument.as_json(), "ltp": str(ltp) if ltp is not None else None, "message": ""}
    )
