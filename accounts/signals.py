"""Audit receivers for authentication events."""

from __future__ import annotations

from django.contrib.auth.signals import user_logged_in, user_logged_out, user_login_failed
from django.dispatch import receiver

from .models import AuditEvent


@receiver(user_logged_in)
def _logged_in(sender, request, user, **kwargs):
    from .services import audit_record

    audit_record(action=AuditEvent.Action.LOGIN, user=user, request=request, message=user.get_username())


@receiver(user_logged_out)
def _logged_out(sender, request, user, **kwargs):
    from .services import audit_record

    if user is not None:
        audit_record(action=AuditEvent.Action.LOGOUT, user=user, request=request, message=user.get_username())


@receiver(user_login_failed)
def _login_failed(sender, credentials, request=None, **kwargs):
    from .services import audit_record

    # Only the identifier is kept: the password never leaves the form.
    who = str(credentials.get("username") or credentials.get("email") or "")[:150]
    audit_record(action=AuditEvent.Action.LOGIN_FAILED, request=request, message=f"failed login for {who!r}")
