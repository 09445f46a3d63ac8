"""The one place pages format money and times (core.money, core.timefmt); static/js/format.js is
the twin for what pages render themselves. Loaded into every template (settings: builtins), so a
template never formats a figure or an instant by hand: `{{ x|rupees }}` → "−₹1,561.25",
`{{ t|ist }}` → "02 Dec 2026, 10:32:29 IST"."""

from django import template

from core.money import inr, inr_short, rupees
from core.timefmt import ist

register = template.Library()
register.filter("inr", inr)
register.filter("inr_short", inr_short)
register.filter("rupees", rupees)
register.filter("ist", ist)
