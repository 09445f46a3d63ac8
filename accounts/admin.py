from django.conf import settings
from django.contrib import admin, messages

from openalgo_client.netpolicy import NetworkPolicy

from .models import AllowedNetwork, AuditEvent, FirstAdminClaim, TradingAccount


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
    readonly_fields = [
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


@admin.register(AuditEvent)
class AuditEventAdmin(admin.ModelAdmin):
    list_display = ["created_at", "action", "user", "account_name", "message", "ip_address"]
    list_filter = ["action"]
    search_fields = ["message", "account_name", "user__username"]
    readonly_fields = [f.name for f in AuditEvent._meta.fields]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
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
