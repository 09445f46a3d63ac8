from django import forms

from .models import MarketHoliday, SpecialTradingSession


class HolidayForm(forms.ModelForm):
    class Meta:
        model = MarketHoliday
        fields = ["date", "name", "market"]
        widgets = {"date": forms.DateInput(attrs={"type": "date"})}


class SpecialSessionForm(forms.ModelForm):
    class Meta:
        model = SpecialTradingSession
        fields = ["date", "name", "market", "start", "end"]
        widgets = {
            "date": forms.DateInput(attrs={"type": "date"}),
            "start": forms.TimeInput(attrs={"type": "time"}),
            "end": forms.TimeInput(attrs={"type": "time"}),
        }

    def clean(self):
        data = super().clean()
        if data.get("start") and data.get("end") and data["end"] <= data["start"]:
            raise forms.ValidationError("The session must end after it starts.")
        return data
