"""Recompute every account's broker-account fingerprint (after SECRET_KEY changed: the
fingerprints are keyed by it, so old ones no longer match new ones and a duplicate would slip by).

Each key is decrypted in memory for the moment of the digest. An account whose new fingerprint
another account already holds is left without one and listed: the same broker account twice."""

from __future__ import annotations

from django.core.management.base import BaseCommand
from django.db import transaction

from accounts import crypto
from accounts.models import TradingAccount


class Command(BaseCommand):
    help = "Recompute the broker-account fingerprints (run after changing SECRET_KEY)."

    def handle(self, *args, **opts):
        done, unreadable, duplicates = 0, 0, []
        with transaction.atomic():
            accounts = list(TradingAccount.objects.select_for_update().order_by("created_at", "pk"))
            TradingAccount.objects.update(key_fingerprint=None)
            seen: set[str] = set()
            for a in accounts:
                try:
                    fingerprint = crypto.account_fingerprint(a.host_url, crypto.decrypt(a.api_key_encrypted))
                except crypto.KeyUnreadable:
                    unreadable += 1
                    continue
                if fingerprint in seen:
                    duplicates.append(a.name)
                    continue
                seen.add(fingerprint)
                TradingAccount.objects.filter(pk=a.pk).update(key_fingerprint=fingerprint)
                done += 1
        self.stdout.write(f"Fingerprinted {done} account(s); {unreadable} key(s) unreadable.")
        if duplicates:
            self.stdout.write(f"The same broker account as an earlier one (delete them): {', '.join(duplicates)}")
