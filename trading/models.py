"""Orders as intents: every order is written (with a unique idempotency key) and committed before
it is sent, so a crash, a timeout or a redelivered task can never send it twice.

Status machine (transitions are compare-and-set updates, see services.py):

    pending ──claim──▶ sending ──accepted──▶ accepted ──fills──▶ complete / cancelled / rejected
                          │──definitive reject──▶ rejected
                          │──timeout/5xx/broken──▶ unknown ──reconcile: found──▶ accepted
                          │                              └──reconcile: provably absent──▶ pending (resend)
                          └──429 / never connected──▶ pending (nothing reached the broker)
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q


class OrderBatch(models.Model):
    """One user action fanned out over accounts (a manual order, a strategy leg set, a risk exit)."""

    class Kind(models.TextChoices):
        MANUAL = "manual", "Manual"
        STRATEGY = "strategy", "Strategy"
        EXIT = "exit", "Exit"

    user = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    kind = models.CharField(max_length=10, choices=Kind.choices, default=Kind.MANUAL)
    note = models.CharField(max_length=200, blank=True)
    # The submitting form's one-time token (or another caller's idempotency key): a second
    # submission with the same token joins this batch instead of making a second one.
    client_token = models.CharField(max_length=64, blank=True)
    # Accounts left out because the order would have been an entry on a halted or reducing one
    # ("skip halted/reducing accounts for entries"): [{"account_id", "account", "why"}].
    skipped = models.JSONField(default=list, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["user", "client_token"],
                condition=~Q(client_token=""),  # nosec B106 # a duplicate-submit guard, not a password
                name="one_batch_per_client_token",
            ),
        ]

    def __str__(self) -> str:
        return f"batch {self.pk} ({self.kind})"


class Order(models.Model):
    class Status(models.TextChoices):
        SPLIT = "split", "Split into child orders"
        PENDING = "pending", "Queued"
        SENDING = "sending", "Sending"
        ACCEPTED = "accepted", "Accepted"
        UNKNOWN = "unknown", "Outcome unknown"
        OPEN = "open", "Open"
        COMPLETE = "complete", "Filled"
        CANCELLED = "cancelled", "Cancelled"
        REJECTED = "rejected", "Rejected"
        # An exit that could not be placed after its retries: a human must look (the account is
        # moved to REDUCING and an alert is written).
        ATTENTION = "attention", "Needs attention"

    class Action(models.TextChoices):
        BUY = "BUY", "Buy"
        SELL = "SELL", "Sell"

    class PriceType(models.TextChoices):
        MARKET = "MARKET", "Market"
        LIMIT = "LIMIT", "Limit"
        SL = "SL", "Stop-limit"
        SL_M = "SL-M", "Stop-market"

    class Product(models.TextChoices):
        MIS = "MIS", "MIS (intraday)"
        NRML = "NRML", "NRML (carry forward)"
        CNC = "CNC", "CNC (delivery)"

    batch = models.ForeignKey(OrderBatch, null=True, blank=True, on_delete=models.SET_NULL, related_name="orders")
    account = models.ForeignKey("accounts.TradingAccount", on_delete=models.PROTECT, related_name="orders")
    parent = models.ForeignKey("self", null=True, blank=True, on_delete=models.CASCADE, related_name="children")
    idempotency_key = models.CharField(max_length=120, unique=True)
    symbol = models.CharField(max_length=60)
    exchange = models.CharField(max_length=20)
    action = models.CharField(max_length=4, choices=Action.choices)
    quantity = models.PositiveIntegerField()
    pricetype = models.CharField(max_length=6, choices=PriceType.choices, default=PriceType.MARKET)
    product = models.CharField(max_length=4, choices=Product.choices, default=Product.MIS)
    price = models.DecimalField(max_digits=14, decimal_places=2, default=0)
    trigger_price = models.DecimalField(max_digits=14, decimal_places=2, default=0)
    reduce_only = models.BooleanField(default=False)

    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING, db_index=True)
    broker_orderid = models.CharField(max_length=64, null=True, blank=True)
    broker_status = models.CharField(max_length=30, blank=True)
    filled_quantity = models.PositiveIntegerField(default=0)
    average_price = models.DecimalField(max_digits=14, decimal_places=4, null=True, blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    last_error = models.CharField(max_length=300, blank=True)
    note = models.CharField(max_length=200, blank=True, help_text="What AlgoMirror changed, e.g. a trimmed exit.")
    # claimed_at: a worker took it (pending → sending); sent_at: stamped by that worker just
    # before the request leaves, so a sweeper can tell "claimed, not yet sent" from "sent".
    claimed_at = models.DateTimeField(null=True, blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    # Fair polling: least recently polled first, every poll stamped.
    polled_at = models.DateTimeField(null=True, blank=True, db_index=True)
    # A status read not taken at its word (a terminal word awaiting its confirming read, or one we
    # do not recognise): how many in a row, and not polled again before `poll_after`.
    doubtful_reads = models.PositiveSmallIntegerField(default=0)
    poll_after = models.DateTimeField(null=True, blank=True)
    # Reads of the broker's orderbook in a row that did not show this order (proof of absence
    # needs several, spread over OpenAlgo's own broker timeout).
    absent_reads = models.PositiveSmallIntegerField(default=0)
    # Broker order ids of an exit's attempts proven dead (terminal, nothing filled) before it was
    # tried again: never adopted back from the orderbook as this order, nor as another.
    dead_attempts = models.JSONField(default=list, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["account", "broker_orderid"],
                condition=Q(broker_orderid__isnull=False),
                name="one_order_per_broker_id",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.action} {self.quantity} {self.symbol} on {self.account_id} ({self.status})"

    # broker_status of an order OpenAlgo queued for a human's approval (semi-auto mode).
    AWAITING_APPROVAL = "awaiting approval"

    @property
    def status_label(self) -> str:
        """The status as a person reads it: an order queued for approval at OpenAlgo is neither
        accepted nor lost, and says so."""
        if self.status == self.Status.UNKNOWN and self.broker_status == self.AWAITING_APPROVAL:
            return "Awaiting approval at OpenAlgo"
        return self.get_status_display()

    @property
    def tag(self) -> str:
        """Sent to OpenAlgo as `strategy`, so the broker's books name the intent they came from."""
        return f"am{self.pk}"


class Position(models.Model):
    """Our view of one net position, built from the fills of our own orders (trading/pnl.py)."""

    account = models.ForeignKey("accounts.TradingAccount", on_delete=models.CASCADE, related_name="positions")
    symbol = models.CharField(max_length=60)
    exchange = models.CharField(max_length=20)
    product = models.CharField(max_length=4, choices=Order.Product.choices)
    quantity = models.IntegerField(default=0)
    average_price = models.DecimalField(max_digits=18, decimal_places=6, default=0)
    realized = models.DecimalField(max_digits=18, decimal_places=4, default=0)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["account_id", "symbol"]
        constraints = [
            models.UniqueConstraint(
                fields=["account", "symbol", "exchange", "product"], name="one_position_per_instrument"
            )
        ]

    def __str__(self) -> str:
        return f"{self.quantity} {self.symbol} ({self.product}) on {self.account_id}"

    @property
    def key(self) -> str:
        return f"{self.exchange}:{self.symbol}"


class BrokerBook(models.Model):
    """The last copy of one of an account's books as the broker showed it (trades, holdings,
    positions). Pages read these, so a page never waits on 50 brokers."""

    class Kind(models.TextChoices):
        POSITIONS = "positions", "Positions"
        TRADES = "trades", "Trades"
        HOLDINGS = "holdings", "Holdings"

    account = models.ForeignKey("accounts.TradingAccount", on_delete=models.CASCADE, related_name="broker_books")
    kind = models.CharField(max_length=10, choices=Kind.choices)
    ok = models.BooleanField(default=False)
    rows = models.JSONField(default=list, blank=True)
    error = models.CharField(max_length=300, blank=True)
    fetched_at = models.DateTimeField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["account", "kind"], name="one_book_per_kind")]

    def __str__(self) -> str:
        return f"{self.kind} of {self.account_id}"


class Reconciliation(models.Model):
    """The latest comparison of our positions with the broker's positionbook (I6, I8)."""

    class State(models.TextChoices):
        MATCHED = "matched", "Matches the broker"
        MISMATCH = "mismatch", "Differs from the broker"
        UNKNOWN = "unknown", "Broker unreadable"

    account = models.OneToOneField("accounts.TradingAccount", on_delete=models.CASCADE, related_name="reconciliation")
    state = models.CharField(max_length=10, choices=State.choices, default=State.UNKNOWN)
    differences = models.JSONField(default=list, blank=True)
    error = models.CharField(max_length=300, blank=True)
    checked_at = models.DateTimeField()
    matched_at = models.DateTimeField(null=True, blank=True)
    # The platform start (trading.generation) this read belongs to: entries after a restart
    # wait for a read of their own generation (I8).
    generation = models.BigIntegerField(default=0)

    def __str__(self) -> str:
        return f"{self.account_id}: {self.state}"
