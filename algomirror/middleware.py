"""Project middleware: session lifetime limits, and secrets kept out of error reports."""

from __future__ import annotations

import time

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import logout
from django.http import HttpRequest

from accounts.adapters import SESSION_SEEN, SESSION_STARTED
from accounts.security import SENSITIVE_POST_FIELDS

# Activity is written back at most this often: one session save per request is needless load.
_SEEN_GRANULARITY = 15.0


class SessionLifetimeMiddleware:
    """Signs a session out after SESSION_IDLE_MINUTES without a request from the person, and
    SESSION_MAX_HOURS after its login whatever the activity. Background refreshes of live pages
    (`X-Requested-With: fetch`) are not activity: an open dashboard left alone still times out.

    After a sign-out the request goes on as anonymous, so a protected page answers with the
    login redirect and the login's `next` brings the person back."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest):
        if request.user.is_authenticated:
            self._check(request)
        return self.get_response(request)

    def _check(self, request: HttpRequest) -> None:
        session = request.session
        now = time.time()
        started = session.get(SESSION_STARTED)
        seen = session.get(SESSION_SEEN)
        if started is None or seen is None:
            # A session from before these limits (or force_login in tests): its clock starts now.
            session[SESSION_STARTED] = started if started is not None else now
            session[SESSION_SEEN] = seen if seen is not None else now
            return
        if now - started >= settings.SESSION_MAX_HOURS * 3600:
            self._end(request, f"Signed out: sessions last at most {settings.SESSION_MAX_HOURS} hours.")
        elif now - seen >= settings.SESSION_IDLE_MINUTES * 60:
            self._end(request, f"Signed out after {settings.SESSION_IDLE_MINUTES} minutes without activity.")
        elif request.headers.get("X-Requested-With") != "fetch" and now - seen >= _SEEN_GRANULARITY:
            session[SESSION_SEEN] = now

    @staticmethod
    def _end(request: HttpRequest, why: str) -> None:
        logout(request)  # flushes the session (a new key) and audits the logout
        messages.info(request, why)


class SensitivePostMiddleware:
    """Marks the posted fields that hold secrets (passwords, API keys, one-time codes) as sensitive
    for every view, so an error report never shows them — including library views (allauth's
    reauthentication and two-factor pages) that do not mark them themselves. Our own views that take
    a key or a password also say so with @sensitive_post_parameters."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest):
        request.sensitive_post_parameters = list(SENSITIVE_POST_FIELDS)
        return self.get_response(request)
