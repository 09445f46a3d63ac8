"""Trading calendar (database-driven, edited in the admin) and nothing else yet: live prices
live in Redis, not in the database."""

from __future__ import annotations

from django.db import models


class TradingHoursTemplate(models.Model):
    name = models.CharField(max_length=100, unique=True)
    description = models.CharField(max_length=300, blank=True)
    market = models.CharField(max_length=20, default="NSE")
    is_active = models.BooleanField(default=True)

    def __str__(self) -> str:
        return self.name


class TradingSession(models.Model):
    class Kind(models.TextChoices):
        NORMAL = "normal", "Normal"
        PRE_OPEN = "pre_open", "Pre-open"

    class Weekday(models.IntegerChoices):
        MONDAY = 0, "Monday"
        TUESDAY = 1, "Tuesday"
        WEDNESDAY = 2, "Wednesday"
        THURSDAY = 3, "Thursday"
        FRIDAY = 4, "Friday"
        SATURDAY = 5, "Saturday"
        SUNDAY = 6, "Sunday"

    template = models.ForeignKey(TradingHoursTemplate, on_delete=models.CASCADE, related_name="sessions")
    weekday = models.PositiveSmallIntegerField(choices=Weekday.choices)
    name = models.CharField(max_length=50, default="Regular")
    kind = models.CharField(max_length=10, choices=Kind.choices, default=Kind.NORMAL)
    start = models.TimeField()
    end = models.TimeField()
    is_active = models.BooleanField(default=True)

    class Meta:
        ordering = ["weekday", "start"]
        constraints = [
            models.UniqueConstraint(fields=["template", "weekday", "name"], name="session_unique"),
            models.CheckConstraint(condition=models.Q(end__gt=models.F("start")), name="session_ends_after_start"),
        ]

    def __str__(self) -> str:
        return f"{self.get_weekday_display()} {self.start:%H:%M}–{self.end:%H:%M} ({self.kind})"


class MarketHoliday(models.Model):
    date = models.DateField()
    name = models.CharField(max_length=100)
    market = models.CharField(max_length=20, default="NSE")

    class Meta:
        ordering = ["date"]
        constraints = [models.UniqueConstraint(fields=["date", "market"], name="holiday_unique_per_market")]

    def __str__(self) -> str:
        return f"{self.date} {self.name} ({self.market})"


class SpecialTradingSession(models.Model):
    date = models.DateField()
    name = models.CharField(max_length=100)
    market = models.CharField(max_length=20, default="NSE")
    start = models.TimeField()
    end = models.TimeField()
    is_active = models.BooleanField(default=True)

    class Meta:
        ordering = ["date", "start"]
        constraints = [
            models.UniqueConstraint(fields=["date", "market", "name"], name="special_session_unique"),
            models.CheckConstraint(condition=models.Q(end__gt=models.F("start")), name="special_ends_after_start"),
        ]

    def __str__(self) -> str:
        return f"{self.date} {self.name}"
