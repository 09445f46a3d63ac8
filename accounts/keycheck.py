"""Does this process's encryption key list read what the installation stores?

A canary (a known text encrypted under the newest key, rewritten by every rotation) answers it:
* at start-up (`require_readable_keys`, called by every long-running process, and a system check
  run by `migrate` and `check --database default`): a key list that reads neither the canary nor,
  before the first canary, any stored API key stops the process with what to do;
* at run time (`key_list_current`): when an account's key fails to decrypt, a process that cannot
  read the canary either is the one at fault (it predates a rotation) and halts nobody.
Messages never show a key, only where the list came from and how many entries it has.
"""

from __future__ import annotations

import logging

from django.conf import settings
from django.core.checks import Error, Tags, register
from django.core.exceptions import ImproperlyConfigured
from django.db import DatabaseError, transaction

from . import crypto
from .models import EncryptionCanary, TradingAccount

log = logging.getLogger(__name__)

CANARY_TEXT = "algomirror encryption canary v1"
DOCS = "docs/key-rotation.md"


def _source() -> str:
    path = getattr(settings, "ENCRYPTION_KEY_FILE", None)
    where = f"ENCRYPTION_KEY in {path}" if path else "ENCRYPTION_KEY"
    return f"{where} ({len(settings.ENCRYPTION_KEYS)} key(s))"


def canary_store() -> None:
    """Write the canary under the newest key (start-up of a fresh installation, every rotation)."""
    EncryptionCanary.objects.update_or_create(slot=1, defaults={"token": crypto.encrypt(CANARY_TEXT)})


def _canary_reads(token: str) -> bool:
    try:
        return crypto.decrypt(token) == CANARY_TEXT
    except crypto.KeyUnreadable:
        return False


def key_list_current() -> bool:
    """False only when a canary is stored and this process's keys cannot read it."""
    token = EncryptionCanary.objects.filter(slot=1).values_list("token", flat=True).first()
    return token is None or _canary_reads(token)


def key_problems() -> list[str]:
    """What stops this key list from reading the stored data ([] when it reads it). Stores the
    first canary when there is none yet and the list reads the stored keys (or there are none)."""
    token = EncryptionCanary.objects.filter(slot=1).values_list("token", flat=True).first()
    fix = (
        f"The key the data was encrypted with is missing from {_source()}: a rotation dropped the old key "
        "before the data was re-encrypted, or this is the wrong key. Put the previous key back at the end "
        "of the list (newest first: new,old), start again, and run `manage.py rotate_encryption_key` "
        f"before dropping a key ({DOCS})."
    )
    if token is not None:
        return [] if _canary_reads(token) else [f"The encryption keys cannot decrypt the stored canary. {fix}"]
    tokens = list(TradingAccount.objects.values_list("api_key_encrypted", flat=True))
    readable = 0
    for t in tokens:
        try:
            crypto.decrypt(t)
        except crypto.KeyUnreadable:
            continue
        readable += 1
    if tokens and not readable:
        return [f"The encryption keys decrypt none of the {len(tokens)} stored API key(s). {fix}"]
    with transaction.atomic():
        if not EncryptionCanary.objects.filter(slot=1).exists():
            canary_store()
    return []


def require_readable_keys() -> None:
    """Stop a starting process whose key list cannot read the stored data."""
    problems = key_problems()
    if problems:
        raise ImproperlyConfigured(" ".join(problems) + " Refusing to start.")


@register(Tags.database)
def check_encryption_keys(app_configs=None, databases=None, **kwargs) -> list[Error]:
    """Run by `migrate` and `check --database default`: the deploy stops before a process starts."""
    if not databases:
        return []
    try:
        problems = key_problems()
    except DatabaseError:  # tables not created yet (the first migrate): nothing stored to read
        return []
    return [Error(p, id="accounts.E001") for p in problems]
