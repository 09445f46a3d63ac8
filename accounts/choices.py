"""Account states and audit actions, importable by other apps without reaching into accounts.models."""

from __future__ import annotations

from django.db import models


class AccountStatus(models.TextChoices):
    UNKNOWN = "unknown", "Not checked yet"
    CONNECTED = "connected", "Connected"
    DEGRADED = "degraded", "Failing checks"
    DOWN = "down", "Down"
    SESSION_EXPIRED = "session_expired", "Broker session expired"
    INVALID_KEY = "invalid_key", "API key rejected"
    KEY_UNREADABLE = "key_unreadable", "Key unreadable"
    # OpenAlgo answers, but its broker-backed funds came back without figures (a dead broker
    # token behind a live OpenAlgo): nothing the broker says can be trusted until they are real.
    BROKER_UNKNOWN = "broker_unknown", "Broker session unknown"


class OrderMode(models.TextChoices):
    """How the account's OpenAlgo key places orders, as its answers have shown it."""

    UNKNOWN = "unknown", "Not seen yet"
    AUTO = "auto", "Auto"
    # OpenAlgo's "Action Center": orders wait for a human to approve them; modify, cancel and
    # close are refused, so an automatic exit cannot be guaranteed.
    SEMI_AUTO = "semi_auto", "Semi-auto (Action Center)"


class TradingState(models.TextChoices):
    ACTIVE = "active", "Active"
    REDUCING = "reducing", "Reducing only"
    HALTED = "halted", "Halted"


class AuditAction(models.TextChoices):
    LOGIN = "login", "Login"
    LOGOUT = "logout", "Logout"
    LOGIN_FAILED = "login_failed", "Failed login"
    ADMIN_CREATED = "admin_created", "First admin created"
    ACCOUNT_ADDED = "account_added", "Account added"
    ACCOUNT_CHANGED = "account_changed", "Account changed"
    ACCOUNT_DELETED = "account_deleted", "Account deleted"
    KEY_ROTATED = "key_rotated", "Encryption key rotated"
    KEY_UNREADABLE = "key_unreadable", "API key unreadable"
    KEY_READABLE = "key_readable", "API key readable again"
    CONNECTION_CHANGED = "connection_changed", "Connection changed"
    DATA_ROLE_MOVED = "data_role_moved", "Market-data account changed"
    TRADING_STATE = "trading_state", "Trading state changed"
    RECONCILIATION = "reconciliation", "Broker positions differ"
    POSITION_REPAIRED = "position_repaired", "Position repaired from the broker"
    ACCOUNT_CLOSED = "account_closed", "Account closed out"
    CLOSE_REFUSED = "close_refused", "Close-out refused"
    EXIT_NEEDS_ATTENTION = "exit_attention", "Exit needs attention"
    ORDER_MODE = "order_mode", "Order mode changed"
    # Orders: one row per account of a batch when it is written, one per order outcome (never per
    # poll or fill), and one per cancel, modify or close the trader asks for. Each names its
    # mirrored order (AuditEvent.group, "M-<batch>").
    ORDER_PLACED = "order_placed", "Order placed"
    ORDER_SKIPPED = "order_skipped", "Account skipped"
    ORDER_ACCEPTED = "order_accepted", "Order accepted"
    ORDER_REJECTED = "order_rejected", "Order rejected"
    ORDER_UNKNOWN = "order_unknown", "Order outcome unknown"
    ORDER_CANCEL = "order_cancel", "Order cancel"
    ORDER_MODIFY = "order_modify", "Order modify"
    POSITION_CLOSE = "position_close", "Position close"
    CANCEL_ALL = "cancel_all", "Cancel all orders"


class AlertLevel(models.TextChoices):
    INFO = "info", "Info"
    WARNING = "warning", "Warning"
    CRITICAL = "critical", "Critical"


class AlertKind(models.TextChoices):
    KEY_UNREADABLE = "key_unreadable", "API key unreadable: account halted"
    EXIT_NEEDS_ATTENTION = "exit_attention", "Exit needs attention"
    EXIT_FOUND = "exit_found", "Exit found at the broker after all"
    BROKER_UNREADABLE = "broker_unreadable", "Broker books unreadable"
    BROKER_SESSION_UNKNOWN = "broker_session_unknown", "Broker session unknown"
    SEMI_AUTO = "semi_auto", "Account in semi-auto mode"
    SEMI_AUTO_EXIT_REFUSED = "semi_auto_exit", "Exit refused: account in semi-auto mode"
    PRICES_DROPPED = "prices_dropped", "Instrument not streamed"
