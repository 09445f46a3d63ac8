"""Seed the NSE/BSE calendar: weekday sessions, 2025–2026 trading holidays, 2025 Muhurat."""

import datetime as dt

from django.db import migrations

HOLIDAYS = {
    "2025-02-26": "Mahashivratri",
    "2025-03-14": "Holi",
    "2025-03-31": "Id-Ul-Fitr (Ramadan Eid)",
    "2025-04-10": "Shri Mahavir Jayanti",
    "2025-04-14": "Dr. Baba Saheb Ambedkar Jayanti",
    "2025-04-18": "Good Friday",
    "2025-05-01": "Maharashtra Day",
    "2025-08-15": "Independence Day",
    "2025-08-27": "Shri Ganesh Chaturthi",
    "2025-10-02": "Mahatma Gandhi Jayanti / Dussehra",
    "2025-10-21": "Diwali Laxmi Pujan",
    "2025-10-22": "Balipratipada",
    "2025-11-05": "Prakash Gurpurb Sri Guru Nanak Dev",
    "2025-12-25": "Christmas",
    "2026-01-26": "Republic Day",
    "2026-03-03": "Holi",
    "2026-03-26": "Shri Ram Navami",
    "2026-03-31": "Shri Mahavir Jayanti",
    "2026-04-03": "Good Friday",
    "2026-04-14": "Dr. Baba Saheb Ambedkar Jayanti",
    "2026-05-01": "Maharashtra Day",
    "2026-05-28": "Bakri Id",
    "2026-06-26": "Muharram",
    "2026-09-14": "Ganesh Chaturthi",
    "2026-10-02": "Mahatma Gandhi Jayanti",
    "2026-10-20": "Dussehra",
    "2026-11-10": "Diwali Balipratipada",
    "2026-11-24": "Prakash Gurpurb Sri Guru Nanak Dev",
    "2026-12-25": "Christmas",
}


def seed(apps, schema_editor):
    Template = apps.get_model("marketdata", "TradingHoursTemplate")
    Session = apps.get_model("marketdata", "TradingSession")
    Holiday = apps.get_model("marketdata", "MarketHoliday")
    Special = apps.get_model("marketdata", "SpecialTradingSession")
    for market in ("NSE", "BSE"):
        template, _ = Template.objects.get_or_create(
            name=f"{market} equity & derivatives",
            defaults={"market": market, "description": "Regular weekday sessions (IST)"},
        )
        for weekday in range(5):
            Session.objects.get_or_create(
                template=template,
                weekday=weekday,
                name="Pre-open",
                defaults={"kind": "pre_open", "start": dt.time(9, 0), "end": dt.time(9, 8)},
            )
            Session.objects.get_or_create(
                template=template,
                weekday=weekday,
                name="Regular",
                defaults={"kind": "normal", "start": dt.time(9, 15), "end": dt.time(15, 30)},
            )
        for day, name in HOLIDAYS.items():
            Holiday.objects.get_or_create(date=dt.date.fromisoformat(day), market=market, defaults={"name": name})
        Special.objects.get_or_create(
            date=dt.date(2025, 10, 21),
            market=market,
            name="Muhurat trading",
            defaults={"start": dt.time(13, 45), "end": dt.time(14, 45)},
        )


class Migration(migrations.Migration):
    dependencies = [("marketdata", "0001_calendar")]
    operations = [migrations.RunPython(seed, migrations.RunPython.noop)]
