from allauth.account.adapter import get_adapter
from django.conf import settings

from . import mailbox


def links(request):
    return {
        "flower_url": settings.FLOWER_URL,
        "local_mailbox": mailbox.in_use(),
        # A callable: only the login page asks, and only then is the database read.
        "signup_open": lambda: get_adapter(request).is_open_for_signup(request),
    }
