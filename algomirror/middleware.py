"""Project middleware: session lifetime limits, and secrets kept out of error reports."""

from __future__ import annotations

import time

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import logout
from django.http import HttpRequest
from django.utils.cache import patch_cache_control

from accounts.adapters import SESSION_SEEN, SESSION_STARTED
from accounts.security import SENSITIVE_POST_FIELDS

# Activity is written back at most this often: one session save per request is needless load.
_SEEN_GRANULARITY = 15.0


def session_ended(session, now: float) -> str:
    """Why this session is over (idle too long, or past its lifetime), or "" while it lasts. A
    session without the limits' clock (from before them) is not ended here."""
    started, seen = session.get(SESSION_STARTED), session.get(SESSION_SEEN)
    if started is not None and now - started >= settings.SESSION_MAX_HOURS * 3600:
        return f"Signed out: sessions last at most {settings.SESSION_MAX_HOURS} hours."
    if seen is not None and now - seen >= settings.SESSION_IDLE_MINUTES * 60:
        return f"Signed out after {settings.SESSION_IDLE_MINUTES} minutes without activity."
    return ""


def _background(request: HttpRequest) -> bool:
    """A request a page's script made on its own, not the person: our scripts say so, and a
    browser marks every fetch and XHR `Sec-Fetch-Dest: empty` (over HTTPS); a GET so marked is a
    poll, a POST so marked is a button the person pressed."""
    if request.headers.get("X-Requested-With") == "fetch":
        return True
    return request.method in ("GET", "HEAD") and request.headers.get("Sec-Fetch-Dest") == "empty"


class SessionLifetimeMiddleware:
    """Signs a session out after SESSION_IDLE_MINUTES without a request from the person, and
    SESSION_MAX_HOURS after its login whatever the activity. Background refreshes of live pages
    (`_background`) are not activity: an open dashboard left alone still times out. WebSockets
    are held to the same limits at their handshake (`SessionLifetimeGuard`).

    After a sign-out the request goes on as anonymous, so a protected page answers with the
    login redirect and the login's `next` brings the person back."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest):
        signed_in = request.user.is_authenticated
        if signed_in:
            self._check(request)
        response = self.get_response(request)
        if signed_in and not response.has_header("Cache-Control"):
            # A signed-in page is not kept by the browser or a proxy: after logout the back button
            # must not show it again (S3), and a shared cache must never hand it to someone else.
            patch_cache_control(response, private=True, no_store=True)
        return response

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
        why = session_ended(session, now)
        if why:
            self._end(request, why)
        elif not _background(request) and now - seen >= _SEEN_GRANULARITY:
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


class SessionLifetimeGuard:
    """Channels middleware, inside AuthMiddlewareStack: a WebSocket handshake whose session is
    idle too long or past its lifetime is anonymous (every consumer then refuses it), as the same
    cookie would be signed out on its next page."""

    def __init__(self, inner):
        self.inner = inner

    async def __call__(self, scope, receive, send):
        from channels.db import database_sync_to_async
        from django.contrib.auth.models import AnonymousUser

        user = scope.get("user")
        session = scope.get("session")
        if user is not None and session is not None:
            authenticated = await database_sync_to_async(lambda: user.is_authenticated)()
            if authenticated and await database_sync_to_async(session_ended)(session, time.time()):
                scope = {**scope, "user": AnonymousUser()}
        return await self.inner(scope, receive, send)
