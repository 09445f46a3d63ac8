"""Thin views over selectors (reads) and services (writes)."""

from __future__ import annotations

from urllib.parse import quote, urlencode

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.debug import sensitive_post_parameters
from django.views.decorators.http import require_POST

from . import crypto, selectors, services
from .forms import BROKERS, AccountForm, ConnectionTestForm
from .models import AuditEvent
from .security import recently_authenticated, safe_next_url


def _own(request: HttpRequest, pk: int):
    account = selectors.account_get(user=request.user, pk=pk)
    if account is None:
        raise Http404("No such account")
    return account


def reauthenticate_url(next_url: str) -> str:
    return f"{reverse('account_reauthenticate')}?next={quote(next_url, safe='/')}"


@login_required
def dashboard(request: HttpRequest) -> HttpResponse:
    accounts = list(selectors.account_list_visible_to(user=request.user))
    return render(
        request,
        "accounts/dashboard.html",
        {
            "accounts": accounts,
            "cards": [selectors.account_card(a) for a in accounts],
            "totals": selectors.dashboard_totals(accounts),
            "banners": selectors.account_banners(accounts),
            "paper_available": settings.BROKERSIM_ACCOUNTS_FILE.exists(),
        },
    )


@login_required
def account_list(request: HttpRequest) -> HttpResponse:
    accounts = list(selectors.account_list_visible_to(user=request.user))
    same_server = selectors.same_server_names(accounts)
    for a in accounts:
        a.same_server_as = ", ".join(same_server.get(a.pk, []))
    return render(
        request,
        "accounts/account_list.html",
        {
            "accounts": accounts,
            "banners": selectors.account_banners(accounts),
            "paper_available": settings.BROKERSIM_ACCOUNTS_FILE.exists(),
        },
    )


@sensitive_post_parameters("api_key")
@login_required
def account_add(request: HttpRequest) -> HttpResponse:
    form = AccountForm(request.POST or None, owner=request.user)
    ping_failed = False
    if request.method == "POST" and form.is_valid():
        d = form.cleaned_data
        ping = services.connection_test(host_url=d["host_url"], api_key=d["api_key"])
        if not ping.ok and not request.POST.get("save_anyway"):
            form.add_error(None, f"Connection test failed: {ping.message} Fix it, or tick “save anyway”.")
            ping_failed = True
        else:
            try:
                account = services.account_create(
                    owner=request.user,
                    name=d["name"],
                    host_url=d["host_url"],
                    ws_url=d["ws_url"],
                    api_key=d["api_key"],
                    broker=ping.broker or d["broker"],
                    is_primary=d["is_primary"],
                    is_active=d["is_active"],
                    request=request,
                )
            except services.DuplicateAccount as e:
                form.add_error(None, str(e))
            else:
                messages.success(request, f"Added {account.name}" + (f" ({ping.broker})." if ping.broker else "."))
                _warn_same_server(request, account)
                return redirect("account_list")
    return render(
        request,
        "accounts/account_form.html",
        {"form": form, "brokers": BROKERS, "editing": False, "ping_failed": ping_failed},
    )


def _warn_same_server(request: HttpRequest, account) -> None:
    warning = services.same_server_warning(account)
    if warning:
        messages.warning(request, warning)


@sensitive_post_parameters("api_key")
@login_required
def account_edit(request: HttpRequest, pk: int) -> HttpResponse:
    account = _own(request, pk)
    form = AccountForm(request.POST or None, instance=account, owner=request.user, editing=True)
    if request.method == "POST" and form.is_valid():
        if form.sensitive() and not recently_authenticated(request):
            messages.info(request, "Changing the server or the key needs your password again; then save once more.")
            return redirect(reauthenticate_url(reverse("account_edit", args=[account.pk])))
        d = form.cleaned_data
        fields = {k: d[k] for k in ("name", "broker", "host_url", "ws_url", "is_primary", "is_active")}
        try:
            saved = services.account_update(
                account=account,
                api_key=d.get("api_key", ""),
                send_stored_key=d.get("send_stored_key", False),
                request=request,
                **fields,
            )
        except (services.DuplicateAccount, services.StoredKeyToNewServer) as e:
            form.add_error(None, str(e))
        else:
            messages.success(request, f"Saved {d['name']}.")
            _warn_same_server(request, saved)
            return redirect("account_list")
    return render(
        request, "accounts/account_form.html", {"form": form, "brokers": BROKERS, "editing": True, "account": account}
    )


@login_required
def account_delete(request: HttpRequest, pk: int) -> HttpResponse:
    account = _own(request, pk)
    if request.method == "POST":
        name = account.name
        services.account_delete(account=account, request=request)
        messages.success(request, f"Deleted {name}.")
        return redirect("account_list")
    return render(request, "accounts/account_confirm_delete.html", {"account": account})


@sensitive_post_parameters("api_key")
@login_required
@require_POST
def connection_test(request: HttpRequest) -> JsonResponse:
    form = ConnectionTestForm(request.POST)
    if not form.is_valid():
        why = " ".join(form.errors.get("host_url", []))
        return JsonResponse({"ok": False, "message": f"Enter a valid OpenAlgo URL. {why}".strip()}, status=400)
    key = form.cleaned_data["api_key"].strip()
    host_url = form.cleaned_data["host_url"]
    if key:
        r = services.connection_test(host_url=host_url, api_key=key)
    elif form.cleaned_data["account_id"]:
        account = _own(request, form.cleaned_data["account_id"])
        send = form.cleaned_data["send_stored_key"]
        if send and not services.same_server(host_url, account.host_url) and not recently_authenticated(request):
            return JsonResponse(
                {
                    "ok": False,
                    "message": "Sending the stored key to another server needs your password again.",
                    "reauthenticate": reauthenticate_url(reverse("account_edit", args=[account.pk])),
                }
            )
        try:
            r = services.account_connection_test(account=account, host_url=host_url, send_stored_key=send)
        except services.StoredKeyToNewServer as e:
            return JsonResponse({"ok": False, "message": str(e)})
        except crypto.KeyUnreadable:
            return JsonResponse({"ok": False, "message": "The stored key is unreadable: enter it again."})
    else:
        return JsonResponse({"ok": False, "message": "Enter the API key to test."}, status=400)
    return JsonResponse(
        {"ok": r.ok, "broker": r.broker, "latency_ms": r.latency_ms, "status": r.status, "message": r.message}
    )


@login_required
@require_POST
def paper_accounts(request: HttpRequest) -> HttpResponse:
    try:
        added = services.paper_accounts_add(owner=request.user, request=request)
    except FileNotFoundError as e:
        messages.error(request, str(e))
    except (ValueError, KeyError):
        messages.error(request, "brokersim's accounts file is unreadable; restart brokersim.")
    else:
        if added:
            messages.success(request, f"Added {len(added)} paper account(s): {', '.join(a.name for a in added)}.")
        else:
            messages.info(request, "Every paper account is already added.")
    return redirect(safe_next_url(request, reverse("account_list")))


@login_required
@require_POST
def data_role(request: HttpRequest, pk: int) -> HttpResponse:
    account = _own(request, pk)
    try:
        services.data_role_assign(account=account, request=request)
    except ValueError as e:
        messages.error(request, str(e))
    else:
        messages.success(request, f"Market data now comes from {account.name}.")
    return redirect("account_list")


@login_required
def audit_log(request: HttpRequest) -> HttpResponse:
    """Every audited action, 50 a page, filtered by action kind, account and mirrored order."""
    action = request.GET.get("action", "")
    group = request.GET.get("group", "").strip()[:20]
    raw = request.GET.get("account", "")
    # ASCII digits that fit a database integer; anything else filters nothing (never a 500).
    account_id = int(raw) if raw.isascii() and raw.isdigit() and len(raw) <= 18 else 0
    qs = selectors.audit_list(user=request.user, action=action, account_id=account_id, group=group)
    page = Paginator(qs, 50).get_page(request.GET.get("page"))
    filters = urlencode({k: v for k, v in (("action", action), ("account", account_id or ""), ("group", group)) if v})
    return render(
        request,
        "accounts/audit_log.html",
        {
            "page": page,
            "actions": AuditEvent.Action.choices,
            "action": action,
            "accounts": selectors.account_list_visible_to(user=request.user).order_by("name"),
            "account_id": account_id,
            "group": group,
            "filters": filters,
        },
    )
