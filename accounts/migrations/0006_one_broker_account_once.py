"""One broker account, once: every account gets the keyed fingerprint of its server and key
(decrypted here in memory, never stored in the clear). Where two accounts already hold the same
broker account, the oldest keeps the fingerprint and each later one is halted (no new entries:
every mirrored order would reach that broker account twice) until the trader deletes one.
Paper accounts (brokersim's, or a server answering as OpenAlgo's sandbox) are marked."""

import json

from django.conf import settings
from django.db import migrations, models

PAPER_BROKERS = {"sandbox", "paper", "brokersim"}


def _paper_hosts(normalised_host) -> set[str]:
    path = settings.BROKERSIM_ACCOUNTS_FILE
    try:
        return {normalised_host(e["host"]) for e in json.loads(path.read_text())}
    except (OSError, ValueError, KeyError, TypeError):
        return set()


def fill_fingerprints(apps, schema_editor):
    from accounts import crypto

    TradingAccount = apps.get_model("accounts", "TradingAccount")
    AuditEvent = apps.get_model("accounts", "AuditEvent")
    paper_hosts = _paper_hosts(crypto.normalised_host)
    first: dict[str, object] = {}
    for a in TradingAccount.objects.order_by("created_at", "pk"):
        a.paper = a.broker.lower() in PAPER_BROKERS or crypto.normalised_host(a.host_url) in paper_hosts
        try:
            fingerprint = crypto.account_fingerprint(a.host_url, crypto.decrypt(a.api_key_encrypted))
        except crypto.KeyUnreadable:
            fingerprint = None  # halted at its first use anyway; the re-entered key is checked then
        a.key_fingerprint = None
        if fingerprint is not None and fingerprint not in first:
            first[fingerprint] = a
            a.key_fingerprint = fingerprint
        elif fingerprint is not None:
            other = first[fingerprint]
            named = f"“{other.name}”" if other.owner_id == a.owner_id else "another account"
            a.trading_state = "halted"
            a.halt_reason = f"the same broker account as {named}: delete one of them"[:200]
            AuditEvent.objects.create(
                action="trading_state",
                user_id=a.owner_id,
                account=a,
                account_name=a.name,
                message=f"Halted: {a.halt_reason}",
                details={"state": "halted", "duplicate": True},
            )
        a.save(update_fields=["paper", "key_fingerprint", "trading_state", "halt_reason"])


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0005_order_mode_and_broker_session"),
    ]

    operations = [
        migrations.AddField(
            model_name="tradingaccount",
            name="key_fingerprint",
            field=models.CharField(blank=True, editable=False, max_length=64, null=True, unique=True),
        ),
        migrations.AddField(
            model_name="tradingaccount",
            name="paper",
            field=models.BooleanField(default=False),
        ),
        migrations.RunPython(fill_fingerprints, migrations.RunPython.noop),
    ]
