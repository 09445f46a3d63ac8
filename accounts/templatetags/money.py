from django import template

from accounts.formatting import inr, inr_short

register = template.Library()
register.filter("inr", inr)
register.filter("inr_short", inr_short)
