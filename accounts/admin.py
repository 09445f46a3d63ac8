from django.conf import settings
from django.contrib import admin, messages

from openalgo_client.netpolicy import NetworkPolicy

from .models import AllowedNetwork, AuditEvent, FirstAdminClaim, TradingAccount
from .services import audit_record


def _shown(account: TradingAccount, name: str) -> str:
    value = getattr(account, name)
    if name == "owner":
        return value.get_username() if value is not None else ""
    return "" if value is None else str(value)


@admin.register(TradingAccount)
class TradingAccountAdmin(admin.ModelAdmin):
    list_display = [
        "name",
        "owner",
        "broker",
        "status",
        "trading_state",
        "is_primary",
        "holds_data_role",
        "is_active",
        "latency_ms",
        "last_checked_at",
    ]
    list_filter = ["status", "trading_state", "is_active", "broker"]
    search_fields = ["name", "broker", "host_url"]
    # The ciphertext is never shown or edited here; keys are changed on the account's edit page.
    exclude = ["api_key_encrypted"]
    # Where the stored key is sent is changed only on the account's edit page (password asked again,
    # the key re-entered or confirmed for a new host): from here a host change would hand the key to
    # whatever the new host is at the next health check.
    readonly_fields = [
        "host_url",
        "ws_url",
        "api_key_last4",
        "status",
        "consecutive_failures",
        "last_checked_at",
        "last_ok_at",
        "latency_ms",
        "last_error",
        "funds",
        "funds_at",
        "created_at",
        "updated_at",
    ]

    def has_add_permission(self, request):
        return False  # an account needs an encrypted key: the add page makes it

    def save_model(self, request, obj, form, change):
        changes = {}
        if change and form.changed_data:
            before = TradingAccount.objects.select_related("owner").get(pk=obj.pk)
            changes = {f: [_shown(before, f), _shown(obj, f)] for f in form.changed_data}
        super().save_model(request, obj, form, change)
        if changes:
            audit_record(
                action=AuditEvent.Action.ACCOUNT_CHANGED,
                user=request.user,
                account=obj,
                request=request,
                message=f"admin {request.user.get_username()} changed {', '.join(changes)}",
                details={"via": "admin", "changes": changes},
            )

    def delete_model(self, request, obj):
        self._audit_deleted(request, [obj])
        super().delete_model(request, obj)

    def delete_queryset(self, request, queryset):
        self._audit_deleted(request, list(queryset))
        super().delete_queryset(request, queryset)

    @staticmethod
    def _audit_deleted(request, accounts) -> None:
        for a in accounts:
            audit_record(
                action=AuditEvent.Action.ACCOUNT_DELETED,
                user=request.user,
                account=a,
                request=request,
                message=f"admin {request.user.get_username()} deleted {a.name} (owner {a.owner.get_username()})",
                details={"via": "admin", "host_url": a.host_url, "owner": a.owner.get_username()},
            )


@admin.register(AuditEvent)
class AuditEventAdmin(admin.ModelAdmin):
    """The audit trail is evidence: the admin reads it, nobody adds, edits or deletes a row."""

    list_display = ["created_at", "action", "user", "account_name", "message", "ip_address"]
    list_filter = ["action"]
    search_fields = ["message", "account_name", "user__username"]
    readonly_fields = [f.name for f in AuditEvent._meta.fields]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


admin.site.register(FirstAdminClaim)


@admin.register(AllowedNetwork)
class AllowedNetworkAdmin(admin.ModelAdmin):
    """Networks OpenAlgo servers may be on, added to the OPENALGO_ALLOWED_NETWORKS setting."""

    list_display = ["network", "note", "created_at"]
    search_fields = ["network", "note"]

    def changelist_view(self, request, extra_context=None):
        setting = NetworkPolicy.parse(settings.OPENALGO_ALLOWED_NETWORKS).describe()
        messages.info(
            request,
            f"The OPENALGO_ALLOWED_NETWORKS setting allows {setting}; the networks listed here are added to it. "
            "Link-local and cloud-metadata addresses (169.254.0.0/16, fe80::/10, …) are never allowed.",
        )
        return super().changelist_view(request, extra_context)
