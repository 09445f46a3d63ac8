"""Finding 6: rotating the encryption key under a running stack halts nobody, an account halted
only because its key was unreadable resumes once the key decrypts, a malformed key list stops
start-up, and a key list that cannot read the stored data stops start-up too (the canary)."""

from __future__ import annotations

import io

import pytest
from cryptography.fernet import Fernet
from django.core.exceptions import ImproperlyConfigured
from django.core.management import call_command

from accounts import crypto, keycheck, services
from accounts.models import AuditEvent, TradingAccount
from accounts.tests.factories import account_on
from core.keys import BadKeyList, parse_fernet_keys, read_key_file, write_key_file

pytestmark = pytest.mark.django_db
ACTIVE, HALTED = TradingAccount.TradingState.ACTIVE, TradingAccount.TradingState.HALTED


def _requests(sim) -> dict:
    return sim.sim("GET", "status")["requests"]


@pytest.fixture
def connected(alice, paper_clean):
    sim = paper_clean[0]
    account = account_on(sim, owner=alice)
    keycheck.require_readable_keys()  # what every process does at start: stores the first canary
    account = services.account_check(account_id=account.pk)
    assert account.status == TradingAccount.Status.CONNECTED and account.trading_state == ACTIVE
    return account, sim


def test_a_process_left_on_the_old_keys_after_a_rotation_halts_no_account(connected, settings):
    account, sim = connected
    old = list(settings.ENCRYPTION_KEYS)
    new = Fernet.generate_key().decode()
    # Another process (the operator's shell) rotates: new key in front, everything re-encrypted.
    settings.ENCRYPTION_KEYS = [new, *old]
    call_command("rotate_encryption_key", stdout=io.StringIO())
    # This running process was never restarted: it still has the old list only.
    settings.ENCRYPTION_KEYS = old
    before = _requests(sim)
    account.refresh_from_db()
    with pytest.raises(crypto.KeyListStale):
        services.account_client(account)
    account = services.account_check(account_id=account.pk)
    assert account.status != TradingAccount.Status.KEY_UNREADABLE and account.trading_state == ACTIVE
    assert not AuditEvent.objects.filter(action="key_unreadable").exists()
    assert _requests(sim) == before  # and nothing sent with a key it cannot read
    # Restarted with the new list: it works, no one was halted on the way.
    settings.ENCRYPTION_KEYS = [new]
    account = services.account_check(account_id=account.pk)
    assert account.status == TradingAccount.Status.CONNECTED and account.trading_state == ACTIVE


def test_an_account_halted_for_an_unreadable_key_resumes_when_it_decrypts_again(connected, settings, alice):
    account, _sim = connected
    services.account_trading_state_set(user=alice, account_id=account.pk, state="reducing", reason="expiry day")
    good = list(settings.ENCRYPTION_KEYS)
    settings.ENCRYPTION_KEYS = [Fernet.generate_key().decode()]  # a key list that lost its key...
    keycheck.EncryptionCanary.objects.all().delete()  # ...on an installation without a canary yet
    account = services.account_check(account_id=account.pk)
    assert account.status == TradingAccount.Status.KEY_UNREADABLE and account.trading_state == HALTED

    settings.ENCRYPTION_KEYS = good  # the key is put back and the process restarted
    account = services.account_check(account_id=account.pk)  # the next health check retries
    assert account.status == TradingAccount.Status.CONNECTED
    assert account.trading_state == TradingAccount.TradingState.REDUCING  # what the trader had set
    assert account.halt_reason == "expiry day"
    assert AuditEvent.objects.filter(action="key_readable", account=account).count() == 1
    services.account_check(account_id=account.pk)
    assert AuditEvent.objects.filter(action="key_readable", account=account).count() == 1


def test_a_halt_the_trader_set_meanwhile_is_not_lifted_by_a_key_that_reads_again(connected, settings, alice):
    account, _sim = connected
    good = list(settings.ENCRYPTION_KEYS)
    settings.ENCRYPTION_KEYS = [Fernet.generate_key().decode()]
    keycheck.EncryptionCanary.objects.all().delete()
    services.account_check(account_id=account.pk)
    services.account_trading_state_set(user=alice, account_id=account.pk, state="halted", reason="mine")
    settings.ENCRYPTION_KEYS = good
    account = services.account_check(account_id=account.pk)
    assert account.status == TradingAccount.Status.CONNECTED
    assert account.trading_state == HALTED and account.halt_reason == "mine"


def test_a_key_file_rotated_under_a_running_process_is_read_again(connected, settings, tmp_path, monkeypatch):
    account, _sim = connected
    old = list(settings.ENCRYPTION_KEYS)
    key_file = tmp_path / "keys"
    write_key_file(key_file, old)
    settings.ENCRYPTION_KEY_FILE = key_file
    # The operator's shell: a new key written in front of the file, everything re-encrypted, the
    # old key dropped, all by the command; this process (settings untouched) is still running.
    call_command("rotate_encryption_key", "--generate", stdout=io.StringIO())
    new = parse_fernet_keys(read_key_file(key_file), source="test")
    assert len(new) == 1 and new != old
    # This process as it was before the command ran: its list, and the file as it last read it.
    settings.ENCRYPTION_KEYS = old
    monkeypatch.setattr(crypto, "_file_keys_seen", old)
    account = services.account_check(account_id=account.pk)
    assert account.status == TradingAccount.Status.CONNECTED and account.trading_state == ACTIVE
    assert new == settings.ENCRYPTION_KEYS  # read again from the file when the old list failed
    assert key_file.stat().st_mode & 0o777 == 0o600


@pytest.mark.parametrize(
    ("raw", "words"),
    [
        ("{k},", "entry 2 of 2 is empty (a trailing or doubled comma?)"),
        ("{k},,{k}", "entry 2 of 3 is empty"),
        ("{k},not-a-key", "entry 2 of 2 is not a Fernet key"),
        ("{short}", "entry 1 of 1 is not a Fernet key"),
        ("", "is empty"),
    ],
)
def test_a_malformed_key_list_is_refused_naming_the_entry_never_the_key(raw, words):
    k = Fernet.generate_key().decode()
    raw = raw.format(k=k, short=k[:-4])
    with pytest.raises(BadKeyList) as e:
        parse_fernet_keys(raw, source="ENCRYPTION_KEY")
    assert words in str(e.value) and k not in str(e.value) and k[:-4] not in str(e.value)


def test_a_key_list_that_cannot_read_the_stored_data_stops_start_up(connected, settings):
    good = list(settings.ENCRYPTION_KEYS)
    wrong = Fernet.generate_key().decode()
    settings.ENCRYPTION_KEYS = [wrong]
    with pytest.raises(ImproperlyConfigured, match="cannot decrypt the stored canary") as e:
        keycheck.require_readable_keys()
    assert "rotate_encryption_key" in str(e.value) and "new,old" in str(e.value)
    assert wrong not in str(e.value) and all(k not in str(e.value) for k in good)
    errors = keycheck.check_encryption_keys(databases=["default"])
    assert [err.id for err in errors] == ["accounts.E001"]
    # Before the first canary: the stored API keys are the proof.
    keycheck.EncryptionCanary.objects.all().delete()
    with pytest.raises(ImproperlyConfigured, match="decrypt none of the 1 stored API key"):
        keycheck.require_readable_keys()
    settings.ENCRYPTION_KEYS = [wrong, *good]  # the right list (new key in front) starts
    keycheck.require_readable_keys()
    assert keycheck.check_encryption_keys(databases=["default"]) == []
