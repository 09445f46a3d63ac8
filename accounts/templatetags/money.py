from django import template

from core.money import inr, inr_short

register = template.Library()
register.filter("inr", inr)
register.filter("inr_short", inr_short)
