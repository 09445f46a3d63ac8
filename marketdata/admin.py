from django.contrib import admin

from . import selectors
from .models import MarketHoliday, SpecialTradingSession, TradingHoursTemplate, TradingSession


class InvalidatesCalendar(admin.ModelAdmin):
    def save_model(self, request, obj, form, change):
        super().save_model(request, obj, form, change)
        selectors.calendar_invalidate()

    def delete_model(self, request, obj):
        super().delete_model(request, obj)
        selectors.calendar_invalidate()


class SessionInline(admin.TabularInline):
    model = TradingSession
    extra = 0


@admin.register(TradingHoursTemplate)
class TemplateAdmin(InvalidatesCalendar):
    list_display = ["name", "market", "is_active"]
    inlines = [SessionInline]

    def save_related(self, request, form, formsets, change):
        super().save_related(request, form, formsets, change)
        selectors.calendar_invalidate()


@admin.register(MarketHoliday)
class HolidayAdmin(InvalidatesCalendar):
    list_display = ["date", "name", "market"]
    list_filter = ["market"]
    date_hierarchy = "date"


@admin.register(SpecialTradingSession)
class SpecialAdmin(InvalidatesCalendar):
    list_display = ["date", "name", "market", "start", "end", "is_active"]
