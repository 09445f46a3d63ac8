"""Web-facing security helpers shared by every app's views: the client address (behind trusted
proxies), safe `next` redirects, and re-authentication before sensitive actions."""

from __future__ import annotations

import time
from functools import wraps

from allauth.account.adapter import get_adapter
from allauth.account.internal.flows.login import get_authentication_records
from allauth.core.exceptions import ReauthenticationRequired
from django.conf import settings
from django.contrib import messages
from django.contrib.auth import REDIRECT_FIELD_NAME
from django.core.exceptions import ImproperlyConfigured, PermissionDenied
from django.http import HttpRequest, HttpResponseRedirect
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme, urlencode

# Posted fields whose values never appear in an error report, whichever view receives them
# (allauth's reauthentication and MFA views, the admin, ours): algomirror's middleware marks them.
SENSITIVE_POST_FIELDS = (
    "password",
    "password1",
    "password2",
    "oldpassword",
    "new_password1",
    "new_password2",
    "api_key",
    "code",
    "secret",
    "token",
    "key",
)


def client_ip(request: HttpRequest) -> str | None:
    """The visitor's address: X-Forwarded-For counted from the right by ALLAUTH_TRUSTED_PROXY_COUNT
    (or ALLAUTH_TRUSTED_CLIENT_IP_HEADER), else REMOTE_ADDR. The same address the lockout uses."""
    try:
        return get_adapter(request).get_client_ip(request)
    except (PermissionDenied, ImproperlyConfigured):  # no address, or fewer hops than trusted proxies
        return request.META.get("REMOTE_ADDR") or None


def safe_next_url(request: HttpRequest, default: str) -> str:
    """The posted (or query) `next` when it is a path on this site, else `default`. Django's check,
    not a prefix test: `/\\evil.example` is `//evil.example` to a browser."""
    nxt = (request.POST.get("next", "") or request.GET.get("next", "")).strip()
    if nxt and url_has_allowed_host_and_scheme(nxt, allowed_hosts=None, require_https=request.is_secure()):
        return nxt
    return default


# ---------------------------------------------------------------- re-authentication
def recently_authenticated(request: HttpRequest) -> bool:
    """True when this session gave the password (or a second factor) within
    ACCOUNT_REAUTHENTICATION_TIMEOUT seconds: at login or on allauth's reauthenticate page."""
    user = request.user
    if not user.is_authenticated:
        return False
    records = get_authentication_records(request, user)
    last = max((r.get("at", 0) for r in records), default=0)
    return time.time() - last < settings.ACCOUNT_REAUTHENTICATION_TIMEOUT


def ensure_recent_auth(request: HttpRequest) -> None:
    """Raise allauth's ReauthenticationRequired unless the password was given recently. Its
    middleware answers with the reauthenticate page and resumes the request after. For a GET only:
    a POST may carry an API key, which allauth would keep in the session meanwhile; a view that
    decides on a POST uses `reauth_redirect` instead."""
    if not recently_authenticated(request):
        raise ReauthenticationRequired()


def reauth_redirect(request: HttpRequest, back: str | None = None) -> HttpResponseRedirect:
    """Send the person to confirm their password, then back to `back` (default: this page), without
    keeping what they posted: nothing was changed, they submit again."""
    back = back or request.path
    messages.warning(request, "Confirm your password first: nothing was changed. Then submit again.")
    return HttpResponseRedirect(f"{reverse('account_reauthenticate')}?{urlencode({REDIRECT_FIELD_NAME: back})}")


def require_recent_auth(view=None, *, when=None):
    """View decorator: the password (or TOTP) must have been given within
    ACCOUNT_REAUTHENTICATION_TIMEOUT. `when(request) -> bool` limits it to the requests that need it
    (e.g. only when the host or the key changes). GET goes through allauth's reauthentication and
    comes back; POST is redirected there without stashing its body (see `reauth_redirect`)."""

    def decorator(func):
        @wraps(func)
        def wrapper(request: HttpRequest, *args, **kwargs):
            if (when is None or when(request)) and not recently_authenticated(request):
                if request.method in ("GET", "HEAD"):
                    raise ReauthenticationRequired()
                return reauth_redirect(request)
            return func(request, *args, **kwargs)

        return wrapper

    return decorator(view) if view is not None else decorator
