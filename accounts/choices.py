"""Account states, importable by other apps without reaching into accounts.models."""

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


class TradingState(models.TextChoices):
    ACTIVE = "active", "Active"
    REDUCING = "reducing", "Reducing only"
    HALTED = "halted", "Halted"
