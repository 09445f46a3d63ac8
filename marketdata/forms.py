"""Trading-calendar forms: a market from the list, dates still to come, no duplicates, and every
refusal as a sentence (never a constraint name)."""

from __future__ import annotations

from django import forms
from django.utils import timezone

from . import selectors


def day(d) -> str:
    return f"{d:%a %d %b %Y}"


def _or(items: list[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " or " + items[-1]


class _CalendarForm(forms.Form):
    what = ""  # "holidays", "special sessions": for the sentences

    date = forms.DateField(widget=forms.DateInput(attrs={"type": "date"}))
    market = forms.ChoiceField()

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        markets = selectors.calendar_markets()
        self.fields["market"].choices = [(m, m) for m in markets]
        self.fields["market"].error_messages["invalid_choice"] = f"Choose a market the calendar knows: {_or(markets)}."
        self.fields["date"].error_messages["invalid"] = "Enter a date, e.g. 26/01/2027."

    def clean_date(self):
        d = self.cleaned_data["date"]
        if d < timezone.localdate():
            raise forms.ValidationError(f"{d:%d %b %Y} has passed: add {self.what} for today or later.")
        return d


class HolidayForm(_CalendarForm):
    what = "holidays"
    field_order = ["date", "name", "market"]

    name = forms.CharField(label="Holiday", max_length=100)

    def clean(self):
        data = super().clean()
        if data.get("date") and data.get("market"):
            existing = selectors.holiday_on(data["date"], data["market"])
            if existing is not None:
                raise forms.ValidationError(self.duplicate(existing))
        return data

    @staticmethod
    def duplicate(h) -> str:
        return f"{h.market} already has a holiday on {day(h.date)}: {h.name}."


class SpecialSessionForm(_CalendarForm):
    what = "special sessions"
    field_order = ["date", "name", "market", "start", "end"]

    name = forms.CharField(
        label="Session name", max_length=100, widget=forms.TextInput(attrs={"placeholder": "Muhurat trading"})
    )
    start = forms.TimeField(label="Starts (IST)", widget=forms.TimeInput(attrs={"type": "time"}))
    end = forms.TimeField(label="Ends (IST)", widget=forms.TimeInput(attrs={"type": "time"}))

    def clean(self):
        data = super().clean()
        start, end = data.get("start"), data.get("end")
        if start and end and end <= start:
            why = f"both are {start:%H:%M}" if end == start else f"{end:%H:%M} is before {start:%H:%M}"
            raise forms.ValidationError(f"The session must end after it starts ({why}).")
        if data.get("date") and data.get("market") and data.get("name"):
            existing = selectors.special_named(data["date"], data["market"], data["name"])
            if existing is not None:
                raise forms.ValidationError(self.duplicate(existing))
        return data

    @staticmethod
    def duplicate(s) -> str:
        return f"{s.market} already has a special session called {s.name} on {day(s.date)}."
