"""allauth adapter: the first person to register becomes the superuser; then signup closes."""

from __future__ import annotations

from allauth.account.adapter import DefaultAccountAdapter
from allauth.core.exceptions import ImmediateHttpResponse
from django.contrib.auth import get_user_model
from django.db import IntegrityError, transaction
from django.shortcuts import render


class FirstUserAdapter(DefaultAccountAdapter):
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
