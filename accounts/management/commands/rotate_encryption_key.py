"""Re-encrypt every stored API key under the newest encryption key.

Production: put the new key first in ENCRYPTION_KEY ("new,old"), run this, then drop the
old key. Embedded default: `--generate` makes a new key, writes it first into the instance
secrets file, re-encrypts everything, then removes the old key from the file.
"""

from __future__ import annotations

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from accounts import crypto
from accounts.models import AuditEvent, TradingAccount
from accounts.services import audit_record
from core.instance import new_fernet_key, write_secret


class Command(BaseCommand):
    help = "Re-encrypt every stored OpenAlgo API key under the newest encryption key."

    def add_arguments(self, parser):
        parser.add_argument(
            "--generate",
            action="store_true",
            help="embedded default only: generate a new key into the instance secrets file",
        )

    def handle(self, *args, generate: bool = False, **opts):
        if generate:
            if settings.PRODUCTION:
                raise CommandError("In production, put the new key first in ENCRYPTION_KEY and run without --generate.")
            settings.ENCRYPTION_KEYS = [new_fernet_key(), *settings.ENCRYPTION_KEYS]
            write_secret(settings.INSTANCE_DIR, "ENCRYPTION_KEY", ",".join(settings.ENCRYPTION_KEYS))
        rotated = unreadable = 0
        with transaction.atomic():
            for account in TradingAccount.objects.select_for_update():
                try:
                    account.api_key_encrypted = crypto.rotate(account.api_key_encrypted)
                except crypto.KeyUnreadable:
                    unreadable += 1
                    continue
                account.save(update_fields=["api_key_encrypted"])
                rotated += 1
            audit_record(
                action=AuditEvent.Action.KEY_ROTATED,
                message=f"re-encrypted {rotated} API key(s); {unreadable} unreadable",
                details={"rotated": rotated, "unreadable": unreadable},
            )
        if generate:
            settings.ENCRYPTION_KEYS = settings.ENCRYPTION_KEYS[:1]
            write_secret(settings.INSTANCE_DIR, "ENCRYPTION_KEY", settings.ENCRYPTION_KEYS[0])
        self.stdout.write(f"Re-encrypted {rotated} API key(s); {unreadable} could not be read.")
