"""Broker accounts (one OpenAlgo server each), the audit trail, and the first-admin claim."""

from __future__ import annotations

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import URLValidator
from django.db import models
from django.db.models import Q

from openalgo_client.netpolicy import parse_entry

from .choices import AccountStatus, AlertKind, AlertLevel, AuditAction, OrderMode, TradingState

# The broker names a paper OpenAlgo reports in ping (OpenAlgo's analyzer answers as "sandbox").
PAPER_BROKERS = frozenset({"sandbox", "paper", "brokersim"})

ws_url_validator = URLValidator(schemes=["ws", "wss"], message="Enter a ws:// or wss:// URL.")


class TradingAccount(models.Model):
    """One OpenAlgo instance fronting one broker account.

    `is_primary` is the user's choice of market-data account; `holds_data_role` says which
    account the feed uses right now (it moves to a healthy backup when the primary goes down
    and back when the user says so). Both are unique per user in the database.
    """

    Status = AccountStatus
    TradingState = TradingState
    OrderMode = OrderMode

    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="trading_accounts")
    name = models.CharField(max_length=100)
    broker = models.CharField(max_length=50, blank=True)
    host_url = models.URLField(max_length=500)
    ws_url = models.CharField(max_length=500, validators=[ws_url_validator])
    api_key_encrypted = models.TextField()
    api_key_last4 = models.CharField(max_length=4)
    # crypto.account_fingerprint(host_url, key): one broker account is added once, across every
    # user. NULL only for a duplicate that predates it (halted by the migration that filled it).
    key_fingerprint = models.CharField(max_length=64, unique=True, null=True, blank=True, editable=False)
    # A paper account (brokersim, OpenAlgo's sandbox): no real money behind it.
    paper = models.BooleanField(default=False)
    is_primary = models.BooleanField(default=False)
    holds_data_role = models.BooleanField(default=False)
    is_active = models.BooleanField(default=True)
    trading_state = models.CharField(max_length=10, choices=TradingState.choices, default=TradingState.ACTIVE)
    halt_reason = models.CharField(max_length=200, blank=True)

    status = models.CharField(max_length=20, choices=Status.choices, default=Status.UNKNOWN)
    consecutive_failures = models.PositiveIntegerField(default=0)
    last_checked_at = models.DateTimeField(null=True, blank=True)
    last_ok_at = models.DateTimeField(null=True, blank=True)
    latency_ms = models.PositiveIntegerField(null=True, blank=True)
    last_error = models.CharField(max_length=300, blank=True)
    # Latest funds as OpenAlgo reported them (already coerced to Decimal strings).
    funds = models.JSONField(default=dict, blank=True)
    funds_at = models.DateTimeField(null=True, blank=True)
    # Semi-auto is a setting of the OpenAlgo key that no read shows: it is learnt from an order
    # reply (a pending_order_id, or a 403 "not allowed in Semi-Auto mode"); the evidence is kept.
    order_mode = models.CharField(max_length=10, choices=OrderMode.choices, default=OrderMode.UNKNOWN)
    order_mode_evidence = models.CharField(max_length=200, blank=True)
    order_mode_at = models.DateTimeField(null=True, blank=True)

    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(fields=["owner", "name"], name="account_name_unique_per_user"),
            models.UniqueConstraint(fields=["owner"], condition=Q(is_primary=True), name="one_primary_per_user"),
            models.UniqueConstraint(
                fields=["owner"], condition=Q(holds_data_role=True), name="one_data_source_per_user"
            ),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def masked_key(self) -> str:
        return f"••••{self.api_key_last4}"

    @property
    def is_healthy(self) -> bool:
        return self.status == self.Status.CONNECTED

    @property
    def is_semi_auto(self) -> bool:
        return self.order_mode == self.OrderMode.SEMI_AUTO

    @property
    def is_paper(self) -> bool:
        return self.paper or self.broker.lower() in PAPER_BROKERS

    @property
    def status_badge(self) -> str:
        """The connectivity badge's style: a green "Connected" would read "all is well" next to a
        halted or reducing account, so it is muted there (the trading-state badge comes first)."""
        if self.status == self.Status.CONNECTED and self.trading_state != self.TradingState.ACTIVE:
            return "muted"
        return self.status


class AuditEvent(models.Model):
    """Append-only audit trail. `account_name` is kept so deleted accounts stay readable."""

    Action = AuditAction

    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    account = models.ForeignKey(TradingAccount, null=True, blank=True, on_delete=models.SET_NULL)
    account_name = models.CharField(max_length=100, blank=True)
    action = models.CharField(max_length=30, choices=Action.choices)
    message = models.CharField(max_length=300, blank=True)
    details = models.JSONField(default=dict, blank=True)
    ip_address = models.GenericIPAddressField(null=True, blank=True)
    user_agent = models.CharField(max_length=300, blank=True)
    # The mirrored order an order action belongs to ("M-12"), so the audit page finds all of it.
    group = models.CharField(max_length=20, blank=True, db_index=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.get_action_display()} {self.account_name}".strip()


class Alert(models.Model):
    """An event a person should hear about (an exit that needs attention, a broker that cannot
    be read). Written here, in the same transaction as its cause; delivery channels (Telegram,
    email) read the undelivered ones, so a channel that is down never holds up trading."""

    Kind = AlertKind
    Level = AlertLevel

    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.CASCADE)
    account = models.ForeignKey(TradingAccount, null=True, blank=True, on_delete=models.SET_NULL)
    kind = models.CharField(max_length=30, choices=Kind.choices)
    level = models.CharField(max_length=10, choices=Level.choices, default=Level.WARNING)
    message = models.CharField(max_length=300)
    details = models.JSONField(default=dict, blank=True)
    delivered_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.get_level_display()}: {self.message}"


class FirstAdminClaim(models.Model):
    """Exactly one row ever: whoever inserts it is the installation's first admin. The unique
    `slot` makes two racing registrations collide in the database, whatever the isolation level."""

    slot = models.PositiveSmallIntegerField(unique=True, default=1)
    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE)
    created_at = models.DateTimeField(auto_now_add=True)


class EncryptionCanary(models.Model):
    """One row: a known text encrypted under the newest encryption key, rewritten by every
    rotation. A process that cannot decrypt it has the wrong key list (it predates a rotation, or
    was started with the wrong ENCRYPTION_KEY): that process refuses to start, and at run time it
    halts no account for keys it cannot read (accounts/keycheck.py)."""

    slot = models.PositiveSmallIntegerField(unique=True, default=1)
    token = models.TextField()
    updated_at = models.DateTimeField(auto_now=True)


def _network_entry(value: str) -> None:
    try:
        parse_entry(value)
    except ValueError as e:
        raise ValidationError(str(e)) from None


class AllowedNetwork(models.Model):
    """A network the administrator allows OpenAlgo servers on, beyond the
    OPENALGO_ALLOWED_NETWORKS setting (the two are combined). Link-local and cloud-metadata
    addresses stay refused whatever is listed here (openalgo_client.netpolicy.NEVER)."""

    network = models.CharField(
        max_length=64,
        unique=True,
        validators=[_network_entry],
        help_text="public, loopback, private, or a network such as 192.168.1.0/24 (a single address is fine).",
    )
    note = models.CharField(max_length=200, blank=True, help_text="What runs there, for the next administrator.")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["network"]

    def __str__(self) -> str:
        return self.network
