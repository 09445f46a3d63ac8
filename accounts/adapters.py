"""allauth adapter: the first person to register becomes the superuser; then signup closes.
Mail that cannot be sent is a page saying so, never a server error. Failed passwords lock the account
and the address (accounts.lockout); a login starts the session's lifetime (algomirror.middleware)."""

from __future__ import annotations

import logging
import smtplib
import time

from allauth.account.adapter import DefaultAccountAdapter
from allauth.core.exceptions import ImmediateHttpResponse
from django.contrib.auth import get_user_model
from django.db import IntegrityError, transaction
from django.shortcuts import render

from . import lockout
from .security import client_ip

log = logging.getLogger(__name__)


# Session keys of the session lifetime (read by algomirror.middleware.SessionLifetimeMiddleware).
SESSION_STARTED = "am_session_started"
SESSION_SEEN = "am_session_seen"


class FirstUserAdapter(DefaultAccountAdapter):
    _attempt: lockout.Attempt | None = None

    def pre_authenticate(self, request, **credentials) -> None:
        # Replaces allauth's sliding-window "login_failed" limit for passwords (see accounts.lockout);
        # allauth's limit still guards the second-factor step.
        self._attempt = lockout.begin(request, credentials)
        if self._attempt is None:
            # Refused before the password is checked, so Django's user_login_failed (the audit
            # trail) never fires: a line here keeps every attempt on record (S2), without flooding
            # the audit table during an attack.
            who = str(credentials.get("username") or credentials.get("email") or "")[:150]
            log.warning("login refused (locked out): %r from %s", who, client_ip(request))
            raise self.validation_error("too_many_login_attempts")

    def authenticate(self, request, **credentials):
        # Login and reauthentication both come here: failures of either count.
        user = super().authenticate(request, **credentials)
        if user is not None:
            lockout.succeeded(self._attempt)
        return user

    def login(self, request, user) -> None:
        super().login(request, user)
        now = time.time()
        request.session[SESSION_STARTED] = request.session[SESSION_SEEN] = now

    def is_open_for_signup(self, request) -> bool:
        return not get_user_model().objects.exists()

    def save_user(self, request, user, form, commit=True):
        from .models import AuditEvent, FirstAdminClaim
        from .services import audit_record

        user = super().save_user(request, user, form, commit=False)
        user.is_staff = user.is_superuser = True
        try:
            with transaction.atomic():
                user.save()
                # Two registrations racing past is_open_for_signup() collide here: the claim's
                # unique slot lets exactly one commit.
                FirstAdminClaim.objects.create(user=user)
        except IntegrityError:
            raise ImmediateHttpResponse(render(request, "account/signup_closed.html", status=403)) from None
        audit_record(
            action=AuditEvent.Action.ADMIN_CREATED,
            user=user,
            request=request,
            message=f"{user.get_username()} registered as the first admin",
        )
        return user

    def send_mail(self, template_prefix: str, email: str, context: dict) -> None:
        try:
            super().send_mail(template_prefix, email, context)
        except (OSError, smtplib.SMTPException):
            log.exception("could not send %s mail: the mail server did not accept it", template_prefix)
            # Nothing was stored before the mail: the person can simply try again later.
            raise ImmediateHttpResponse(render(self.request, "account/mail_failed.html", status=503)) from None
