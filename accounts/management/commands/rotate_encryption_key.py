"""Re-encrypt every stored API key (and the key canary) under the newest encryption key.

Safe while the stack runs (docs/key-rotation.md):
* ENCRYPTION_KEY in the environment: put the new key first ("new,old"), restart every process,
  run this, then drop the old key and restart again. A process still holding only the old list
  halts no account: it cannot read the canary, so it knows the fault is its own.
* A key file (ENCRYPTION_KEY_FILE, or the embedded default's secrets file): every process reads
  it again when a key fails or before it encrypts. `--generate` writes a new key in front, re-
  encrypts, checks that every readable key is under the new one, and only then drops the old key.
"""

from __future__ import annotations

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from accounts import crypto, keycheck
from accounts.models import AuditEvent, TradingAccount
from accounts.services import audit_record
from core.instance import new_fernet_key
from core.keys import write_key_file


class Command(BaseCommand):
    help = "Re-encrypt every stored OpenAlgo API key under the newest encryption key."

    def add_arguments(self, parser):
        parser.add_argument(
            "--generate",
            action="store_true",
            help="key file only (the embedded default's secrets file): generate a new key into it",
        )

    def handle(self, *args, generate: bool = False, **opts):
        path = getattr(settings, "ENCRYPTION_KEY_FILE", None)
        if generate:
            if settings.PRODUCTION or path is None:
                raise CommandError(
                    "--generate writes the embedded key file only. With ENCRYPTION_KEY, put the new key first "
                    "(new,old), restart every process, then run this without --generate."
                )
            crypto.reload_keys()
            keys = [new_fernet_key(), *settings.ENCRYPTION_KEYS]
            self._write(path, keys)
        rotated, unreadable, stragglers = self._rotate_all()
        if generate:
            if stragglers:
                # Written meanwhile under the old key by a process that had not read the file yet:
                # the old key stays until a later run finds nothing under it.
                self.stdout.write(f"{stragglers} key(s) were still under the old key: the old key is kept.")
            else:
                self._write(path, settings.ENCRYPTION_KEYS[:1])
        self.stdout.write(f"Re-encrypted {rotated} API key(s); {unreadable} could not be read.")

    def _write(self, path, keys: list[str]) -> None:
        write_key_file(path, keys)
        settings.ENCRYPTION_KEYS = keys
        crypto.reload_keys()

    def _rotate_all(self) -> tuple[int, int, int]:
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
            keycheck.canary_store()
            audit_record(
                action=AuditEvent.Action.KEY_ROTATED,
                message=f"re-encrypted {rotated} API key(s); {unreadable} unreadable",
                details={"rotated": rotated, "unreadable": unreadable},
            )
        stragglers = 0
        with transaction.atomic():
            for account in TradingAccount.objects.select_for_update():
                if crypto.decrypts_under_newest(account.api_key_encrypted):
                    continue
                try:
                    account.api_key_encrypted = crypto.rotate(account.api_key_encrypted)
                except crypto.KeyUnreadable:
                    continue
                account.save(update_fields=["api_key_encrypted"])
                stragglers += 1
        return rotated, unreadable, stragglers
