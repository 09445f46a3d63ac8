"""Writes: accounts, their secret keys, their health, the market-data role, the audit trail."""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal

from django.conf import settings
from django.core.exceptions import SynchronousOnlyOperation
from django.core.signals import setting_changed
from django.db import DatabaseError, IntegrityError, transaction
from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver
from django.utils import timezone

from openalgo_client import netpolicy
from openalgo_client.rest import Funds, OpenAlgoClient, Outcome, Reason
from openalgo_client.ws import BrokerSocket

from . import crypto, events
from .models import PAPER_BROKERS, Alert, AllowedNetwork, AuditEvent, TradingAccount
from .security import client_ip

log = logging.getLogger(__name__)
Status = TradingAccount.Status


# ---------------------------------------------------------------- audit
def audit_record(
    *,
    action: str,
    user=None,
    account: TradingAccount | None = None,
    message: str = "",
    details: dict | None = None,
    request=None,
    group: str = "",
) -> AuditEvent:
    ip = ua = None
    if request is not None:
        ip = client_ip(request)  # behind trusted proxies: the visitor, not the proxy
        ua = request.META.get("HTTP_USER_AGENT", "")[:300]
    return AuditEvent.objects.create(
        action=action,
        user=user if user is not None and user.is_authenticated else None,
        account=account,
        account_name=account.name if account else "",
        message=message[:300],
        details=details or {},
        ip_address=ip,
        user_agent=ua or "",
        group=group,
    )


# ---------------------------------------------------------------- alerts
def alert_raise(
    *,
    kind: str,
    message: str,
    account: TradingAccount | None = None,
    user=None,
    level: str = Alert.Level.WARNING,
    details: dict | None = None,
) -> Alert:
    """Record an alert in the caller's transaction (delivery is a separate concern: the alert
    channels read undelivered rows, so a slow or dead channel never delays trading)."""
    owner = user if user is not None else (account.owner if account is not None else None)
    return Alert.objects.create(
        kind=kind, level=level, message=message[:300], account=account, user=owner, details=details or {}
    )


# ---------------------------------------------------------------- where a broker may be
# Every client below gets `network_policy` (a callable, read at each new connection, so a change
# on the admin page applies without a restart). Rows are read at most every POLICY_TTL seconds
# per process; saving or deleting one resets this process's copy at once.
POLICY_TTL = 10.0
_policy_cache: list = []  # [(read at, policy)]


def network_policy() -> netpolicy.NetworkPolicy:
    """The networks OpenAlgo servers may be on: OPENALGO_ALLOWED_NETWORKS plus the administrator's
    AllowedNetwork rows. If the rows cannot be read (an event loop's thread, a database hiccup),
    the setting alone applies: fewer networks, never more."""
    now = time.monotonic()
    if _policy_cache and now - _policy_cache[0][0] < POLICY_TTL:
        return _policy_cache[0][1]
    policy = netpolicy.NetworkPolicy.parse(settings.OPENALGO_ALLOWED_NETWORKS)
    try:
        rows = list(AllowedNetwork.objects.values_list("network", flat=True))
    except (SynchronousOnlyOperation, DatabaseError):
        log.warning("allowed networks unreadable; the OPENALGO_ALLOWED_NETWORKS setting alone applies")
        return policy
    try:
        policy = policy.merged(netpolicy.NetworkPolicy.parse(rows))
    except ValueError:
        log.error("an allowed-network row is malformed; the OPENALGO_ALLOWED_NETWORKS setting alone applies")
    _policy_cache[:] = [(now, policy)]
    return policy


def network_policy_reset(**_kw) -> None:
    _policy_cache.clear()


post_save.connect(network_policy_reset, sender=AllowedNetwork, dispatch_uid="allowed-network-saved")
post_delete.connect(network_policy_reset, sender=AllowedNetwork, dispatch_uid="allowed-network-deleted")


@receiver(setting_changed)
def _policy_setting_changed(*, setting, **_kw) -> None:
    if setting == "OPENALGO_ALLOWED_NETWORKS":
        network_policy_reset()


# ---------------------------------------------------------------- the one way to reach a broker
# Decryption happens here and nowhere else. Pooled clients are cached per (account, key version):
# the version is a digest of the stored ciphertext, so an edited or re-encrypted key gets a new
# client, and no plaintext is ever a cache key. A cached client holds a key *source* that decrypts
# for the duration of each call, as accounts/crypto.py promises.
_clients: dict[tuple[int, str], OpenAlgoClient] = {}
_client_policies: dict[tuple[int, str], netpolicy.NetworkPolicy] = {}
_clients_lock = threading.Lock()


def _key_version(account: TradingAccount) -> str:
    return hashlib.sha256(account.api_key_encrypted.encode()).hexdigest()[:16]


def _key_source(ciphertext: str) -> Callable[[], str]:
    return lambda: crypto.decrypt(ciphertext)


def _readable_key(account: TradingAccount) -> Callable[[], str]:
    """The account's key source, after proving it decrypts and belongs to this account; an
    unreadable key halts the account (once) and raises `crypto.KeyUnreadable`, so nothing is sent
    to its broker.

    Belongs: another account's ciphertext copied into this row decrypts fine (Fernet binds no
    associated data), so the plaintext is checked against the row's keyed fingerprint of server +
    key (set whenever either changes). A mismatch is treated as unreadable: that key was never
    saved for this server. (Rows from before fingerprints have none and are not checked.)"""
    try:
        plaintext = crypto.decrypt(account.api_key_encrypted)
        if account.key_fingerprint and crypto.account_fingerprint(account.host_url, plaintext) != (
            account.key_fingerprint
        ):
            log.error(
                "account %s: the stored API key is not the one saved for this account (its fingerprint "
                "differs: a ciphertext copied from another row, or SECRET_KEY changed without "
                "`manage.py account_fingerprints`); halted",
                account.pk,
            )
            raise crypto.KeyUnreadable
    except crypto.KeyUnreadable:
        from .keycheck import key_list_current

        if not key_list_current():
            # This process's key list is the one at fault (it predates a rotation): nothing is
            # sent, and no account is halted for it; a restart with the current keys cures it.
            log.error(
                "account %s: this process's encryption keys cannot read the stored canary; restart it with "
                "the current key list (docs/key-rotation.md). The account is not halted.",
                account.pk,
            )
            raise crypto.KeyListStale from None
        _mark_key_unreadable(account)
        raise
    if account.status == Status.KEY_UNREADABLE:
        _key_readable_again(account)
    return _key_source(account.api_key_encrypted)


def account_client(account: TradingAccount) -> OpenAlgoClient:
    """A ready, pooled REST client for `account` (raises `crypto.KeyUnreadable`, account halted)."""
    source = _readable_key(account)
    cache_key = (account.pk, _key_version(account))
    # A pooled client keeps its connections open; one made under another policy is replaced, so
    # a network the administrator removed is left at once, not when the connection idles out.
    policy = network_policy()
    with _clients_lock:
        client = _clients.get(cache_key)
        if client is None or client.host != account.host_url.rstrip("/") or _client_policies.get(cache_key) != policy:
            stale = [k for k in _clients if k[0] == account.pk]
            for k in stale:
                _clients.pop(k).close()
                _client_policies.pop(k, None)
            client = _clients[cache_key] = OpenAlgoClient(
                account.host_url, source, timeout=settings.OPENALGO_TIMEOUT, policy=network_policy
            )
            _client_policies[cache_key] = policy
        return client


def account_socket(
    account: TradingAccount, *, on_frames: Callable[[], None], on_closed: Callable[[str], None], **kw
) -> BrokerSocket:
    """An unconnected WebSocket to `account`'s OpenAlgo (raises `crypto.KeyUnreadable`, account halted)."""
    return BrokerSocket(
        account.ws_url, _readable_key(account), on_frames=on_frames, on_closed=on_closed, policy=network_policy, **kw
    )


class StoredKeyToNewServer(ValueError):
    """The stored key would go to a server it was not saved for, and nobody said to send it."""


STORED_KEY_STAYS = (
    "The stored key is sent only to the server it was saved for: enter the key again for the new "
    "server, or tick “Send my stored key to the new server”."
)


def same_server(a: str, b: str) -> bool:
    """Whether the stored key may go to `a` as it went to `b`: the same server, reached the same
    way. Unlike the one-account-once fingerprint, http:// and https:// differ here: dropping TLS
    sends the key in clear text (to another port), so it is a move like any other."""
    return crypto.normalised_host(a) == crypto.normalised_host(b) and _encrypted(a) == _encrypted(b)


def _encrypted(url: str) -> bool:
    return url.strip().lower().startswith(("https://", "wss://"))


def account_connection_test(*, account: TradingAccount, host_url: str, send_stored_key: bool = False) -> PingResult:
    """Test `host_url` with the stored key of `account` (the user left the key field empty).
    Raises StoredKeyToNewServer for another server unless `send_stored_key` (the caller has
    re-authenticated the user)."""
    if not same_server(host_url, account.host_url) and not send_stored_key:
        raise StoredKeyToNewServer(STORED_KEY_STAYS)
    return connection_test(host_url=host_url, api_key=_readable_key(account))


# ---------------------------------------------------------------- connection test
@dataclass(frozen=True)
class PingResult:
    ok: bool
    broker: str = ""
    latency_ms: int | None = None
    status: str = Status.UNKNOWN
    message: str = ""


# Whatever answered, if it was not OpenAlgo (or nothing answered), the user reads this one text:
# a closed port, a silent one, an SSH banner and a web server must look alike, or the connection
# test is a port scanner of the server's network. (How long the answer takes can still differ.)
NO_OPENALGO_TEXT = "No OpenAlgo server answered at this address: check the URL and that OpenAlgo is running."


def openalgo_shaped(res) -> bool:
    """The reply is OpenAlgo's envelope (`status` success or error): only then is its message
    ours to show. Bodies of other servers never reach a page or the account's last error."""
    return res.body.get("status") in ("success", "error") and res.reason is not Reason.NOT_ALLOWED


def public_error(res) -> str:
    """The text a person may see for a failed call to a user-chosen server."""
    if res.reason is Reason.NOT_ALLOWED:
        return res.message  # about the URL or the administrator's networks, never the target's words
    if openalgo_shaped(res) and res.message:
        return f"OpenAlgo answered: {res.message}"[:300]
    return NO_OPENALGO_TEXT


def connection_test(*, host_url: str, api_key: str | Callable[[], str]) -> PingResult:
    """Ping an OpenAlgo server with a key the user typed (not stored yet). The client is closed
    afterwards: typed keys are never pooled."""
    client = OpenAlgoClient(host_url, api_key, timeout=settings.OPENALGO_TIMEOUT, policy=network_policy)
    with contextlib.closing(client):
        return _ping_result(client)


def _ping_result(client: OpenAlgoClient) -> PingResult:
    res = client.ping()
    if res.ok and isinstance(res.data, dict):
        return PingResult(True, str(res.data.get("broker", "")), round(res.latency_ms), Status.CONNECTED, "Connected")
    if res.reason is Reason.AUTH and openalgo_shaped(res):
        if client.key_is_valid():
            return PingResult(
                False,
                status=Status.SESSION_EXPIRED,
                message="The key is valid but the broker session has expired: log in to the "
                "broker in OpenAlgo, then test again.",
            )
        return PingResult(False, status=Status.INVALID_KEY, message="OpenAlgo rejected this API key.")
    return PingResult(False, status=Status.DOWN, message=public_error(res) if not res.ok else NO_OPENALGO_TEXT)


# ---------------------------------------------------------------- funds: the broker's own word
# The trading-state reason a dead broker session sets; only a halt for this reason is lifted by
# the health check when funds read real again (a trader's or reconciliation's reason stays).
BROKER_UNKNOWN_REASON = "broker session unknown: OpenAlgo answers but the broker gave no funds figures"
FUNDS_FIELDS = ("availablecash", "collateral", "m2mrealized", "m2munrealized", "utiliseddebits")


def funds_verdict(data, previous: dict | None) -> str:
    """Whether a 200 /funds answer carries real figures from the broker: "real", or why not.

    `ping` never reaches the broker, and OpenAlgo's Zerodha (and Fyers) funds answer 200 with
    `data: {}` when the broker call failed, so only figures prove a live broker session. An
    answer of all zeros right after non-zero figures is read the same way (a failed broker read
    dressed as an empty account); a first answer of all zeros is a genuinely empty account."""
    if not isinstance(data, dict) or not any(data.get(k) not in (None, "") for k in FUNDS_FIELDS):
        return "funds answered without figures"
    figures = Funds.parse(data).as_json()
    if all(Decimal(v) == 0 for v in figures.values()) and any(
        Decimal(v) != 0 for v in (previous or {}).values() if v not in (None, "")
    ):
        return "funds answered all zeros right after non-zero figures"
    return "real"


def funds_fields(res, now, previous: dict | None = None) -> dict:
    """The account fields a successful /funds answer updates: none if it failed or carried no
    real figures (`funds_verdict`; `previous` is the account's stored funds, when known), so a
    dead broker session never shows as ₹0.00."""
    if res.ok and funds_verdict(res.data, previous) == "real":
        return {"funds": Funds.parse(res.data).as_json(), "funds_at": now}
    return {}


# ---------------------------------------------------------------- one broker account, once
class DuplicateAccount(ValueError):
    """The server and key of an account already added (by this user or another)."""


def account_duplicate_of(*, owner, fingerprint: str | None, exclude_pk: int | None = None) -> str:
    """Why an account with `fingerprint` cannot be added: "" when none holds it. Every mirrored
    order would reach that broker account twice. Another user's account is never named."""
    if not fingerprint:
        return ""
    other = TradingAccount.objects.filter(key_fingerprint=fingerprint).exclude(pk=exclude_pk).first()
    if other is None:
        return ""
    if other.owner_id == getattr(owner, "pk", owner):
        return (
            f"This broker account is already added here as “{other.name}” (the same OpenAlgo server and "
            "API key): every mirrored order would reach it twice. Edit that account instead."
        )
    return (
        "This broker account is already added to AlgoMirror (the same OpenAlgo server and API key), "
        "by another user: every mirrored order would reach it twice, so it cannot be added again."
    )


def account_fingerprint_for(*, host_url: str, api_key: str = "", account: TradingAccount | None = None) -> str | None:
    """The fingerprint `account` would have with this host and key; a blank key means its stored
    one (decrypted here for the moment of the digest). None when the stored key is unreadable."""
    if not api_key and account is not None:
        try:
            api_key = crypto.decrypt(account.api_key_encrypted)
        except crypto.KeyUnreadable:
            return None
    return crypto.account_fingerprint(host_url, api_key)


def accounts_on_same_server(account: TradingAccount) -> list[TradingAccount]:
    """The owner's other accounts on the same OpenAlgo server with another key. OpenAlgo fronts
    one broker account per server and ping names no broker user or client id, so these are
    almost surely the same broker account: warned about, not refused (a key may have been
    regenerated, the old account not deleted yet)."""
    host = crypto.normalised_host(account.host_url)
    return [
        a
        for a in TradingAccount.objects.filter(owner=account.owner).exclude(pk=account.pk)
        if crypto.normalised_host(a.host_url) == host
    ]


def same_server_warning(account: TradingAccount) -> str:
    others = accounts_on_same_server(account)
    if not others:
        return ""
    names = ", ".join(f"“{a.name}”" for a in others)
    return (
        f"{account.name} uses the same OpenAlgo server as {names} with another key. One OpenAlgo server "
        "fronts one broker account, so they are probably the same account and every order mirrored to "
        "both would reach it twice: deactivate or delete one unless you are sure they differ."
    )


def paper_hosts() -> set[str]:
    """The servers brokersim runs (its accounts file), normalised; empty when it is not running."""
    import json

    try:
        entries = json.loads(settings.BROKERSIM_ACCOUNTS_FILE.read_text())
        return {crypto.normalised_host(e["host"]) for e in entries}
    except (OSError, ValueError, KeyError, TypeError):
        return set()


def _is_paper_server(host_url: str, broker: str) -> bool:
    return broker.lower() in PAPER_BROKERS or crypto.normalised_host(host_url) in paper_hosts()


def _save_unique(account: TradingAccount, owner, **save_kw) -> None:
    """Save, turning a fingerprint that another request committed meanwhile into DuplicateAccount
    (the unique index decides a race the check before it could not see)."""
    try:
        with transaction.atomic():
            account.save(**save_kw)
    except IntegrityError:
        why = account_duplicate_of(owner=owner, fingerprint=account.key_fingerprint, exclude_pk=account.pk)
        if why:
            raise DuplicateAccount(why) from None
        raise


# ---------------------------------------------------------------- create / update / delete
def account_create(
    *,
    owner,
    name: str,
    host_url: str,
    ws_url: str,
    api_key: str,
    broker: str = "",
    is_primary: bool = False,
    is_active: bool = True,
    paper: bool | None = None,
    request=None,
) -> TradingAccount:
    """Raises DuplicateAccount when the server and key are another account's (any user's), and
    netpolicy.UrlRejected for an unusable URL. `paper` None: decided from the broker name and
    brokersim's servers."""
    host_url, ws_url = netpolicy.normalise_base_url(host_url), netpolicy.normalise_ws_url(ws_url)
    fingerprint = crypto.account_fingerprint(host_url, api_key)
    with transaction.atomic():
        why = account_duplicate_of(owner=owner, fingerprint=fingerprint)
        if why:
            raise DuplicateAccount(why)
        first = not TradingAccount.objects.filter(owner=owner).exists()
        if is_primary or first:
            TradingAccount.objects.filter(owner=owner, is_primary=True).update(is_primary=False)
        account = TradingAccount(
            owner=owner,
            name=name,
            host_url=host_url.rstrip("/"),
            ws_url=ws_url,
            broker=broker,
            api_key_encrypted=crypto.encrypt(api_key),
            api_key_last4=api_key[-4:],
            key_fingerprint=fingerprint,
            paper=_is_paper_server(host_url, broker) if paper is None else paper,
            is_primary=is_primary or first,
            holds_data_role=first,
            is_active=is_active,
        )
        _save_unique(account, owner, force_insert=True)
        audit_record(
            action=AuditEvent.Action.ACCOUNT_ADDED,
            user=owner,
            account=account,
            request=request,
            message=f"{name} ({broker or 'broker unknown'}) at {account.host_url}",
        )
        from .tasks import account_check_task

        transaction.on_commit(lambda: account_check_task.delay(account.pk))
    return account


def account_update(
    *, account: TradingAccount, request=None, api_key: str = "", send_stored_key: bool = False, **fields
) -> TradingAccount:
    """Update editable fields; a blank `api_key` keeps the stored one. Raises DuplicateAccount
    when the new server or key are another account's, and StoredKeyToNewServer when the server
    (REST or WebSocket) moves with a blank key unless `send_stored_key` (the user said so)."""
    if "host_url" in fields:
        fields["host_url"] = netpolicy.normalise_base_url(fields["host_url"])
    if "ws_url" in fields:
        fields["ws_url"] = netpolicy.normalise_ws_url(fields["ws_url"])
    with transaction.atomic():
        account = TradingAccount.objects.select_for_update().get(pk=account.pk)
        changed = [k for k, v in fields.items() if getattr(account, k) != v]
        moved = [k for k in ("host_url", "ws_url") if k in changed and not same_server(fields[k], getattr(account, k))]
        if moved and not api_key and not send_stored_key:
            raise StoredKeyToNewServer(STORED_KEY_STAYS)
        if api_key or "host_url" in changed:
            host_url = fields.get("host_url", account.host_url)
            fingerprint = account_fingerprint_for(host_url=host_url, api_key=api_key, account=account)
            why = account_duplicate_of(owner=account.owner, fingerprint=fingerprint, exclude_pk=account.pk)
            if why:
                raise DuplicateAccount(why)
            account.key_fingerprint = fingerprint
            if "host_url" in changed:
                account.paper = _is_paper_server(host_url, fields.get("broker", account.broker))
        if fields.get("is_primary") and not account.is_primary:
            TradingAccount.objects.filter(owner=account.owner, is_primary=True).update(is_primary=False)
        for k, v in fields.items():
            setattr(account, k, v)
        if api_key:
            account.api_key_encrypted = crypto.encrypt(api_key)
            account.api_key_last4 = api_key[-4:]
            changed.append("api_key")
            if account.status == Status.KEY_UNREADABLE:
                account.status = Status.UNKNOWN
                account.trading_state = TradingAccount.TradingState.ACTIVE
                account.halt_reason = ""
        _save_unique(account, account.owner)
        audit_record(
            action=AuditEvent.Action.ACCOUNT_CHANGED,
            user=account.owner,
            account=account,
            request=request,
            message=f"changed: {', '.join(sorted(changed)) or 'nothing'}"
            + (" (stored key sent to the new server)" if moved and not api_key else ""),
            details={"fields": sorted(changed), "stored_key_to_new_server": bool(moved and not api_key)},
        )
        events.account_updated(account)
        from .tasks import account_check_task

        transaction.on_commit(lambda: account_check_task.delay(account.pk))
    return account


def account_delete(*, account: TradingAccount, request=None) -> None:
    with transaction.atomic():
        owner = account.owner
        had_data_role = account.holds_data_role
        was_primary = account.is_primary
        audit_record(
            action=AuditEvent.Action.ACCOUNT_DELETED,
            user=owner,
            account=None,
            request=request,
            message=f"{account.name} ({account.broker})",
            details={"account_id": account.pk},
        )
        AuditEvent.objects.filter(account=account).update(account_name=account.name)
        account.delete()
        rest = TradingAccount.objects.filter(owner=owner, is_active=True).order_by("created_at")
        if was_primary and rest.exists():
            rest.filter(pk=rest.first().pk).update(is_primary=True)
        if had_data_role:
            _move_data_role(owner=owner, reason="the market-data account was deleted")


def paper_accounts_add(*, owner, request=None) -> list[TradingAccount]:
    """Add every brokersim instance listed in its accounts file that is not added yet."""
    import json

    path = settings.BROKERSIM_ACCOUNTS_FILE
    if not path.exists():
        raise FileNotFoundError(f"brokersim is not running (no {path}). Start it with `make run`.")
    entries = json.loads(path.read_text())
    known = set(TradingAccount.objects.filter(owner=owner).values_list("host_url", flat=True))
    added = []
    for e in entries:
        if e["host"].rstrip("/") in known:
            continue
        if account_duplicate_of(owner=owner, fingerprint=crypto.account_fingerprint(e["host"], e["api_key"])):
            continue  # another user's already: a broker account is added once
        name = e["name"]
        n = 2
        while TradingAccount.objects.filter(owner=owner, name=name).exists():
            name, n = f"{e['name']}-{n}", n + 1
        added.append(
            account_create(
                owner=owner,
                name=name,
                host_url=e["host"],
                ws_url=e["ws_url"],
                api_key=e["api_key"],
                broker=e["broker"],
                paper=True,
                request=request,
            )
        )
    return added


# ---------------------------------------------------------------- health
def account_check(*, account_id: int) -> TradingAccount | None:
    """Ping one account, read its funds, record status and latency, move the data role if needed.

    An account is Connected only when funds (a call that reaches the broker) answer with real
    figures; a ping alone proves only that OpenAlgo runs. Funds without figures mark it "broker
    session unknown" and move it to REDUCING (exits only) until they read real again. Three
    failed checks in a row mark an account down. A key that will not decrypt halts the account
    at once and sends nothing to its broker.
    """
    account = TradingAccount.objects.filter(pk=account_id, is_active=True).first()
    if account is None:
        return None
    now = timezone.now()
    before = account.status
    try:
        client = account_client(account)
    except crypto.KeyUnreadable:
        account.refresh_from_db()
        return account
    res = client.ping()
    updates: dict = {"last_checked_at": now}
    broker_session = None  # after a good ping: "real", or why the broker's session is in doubt
    if res.ok:
        broker = str((res.data or {}).get("broker", ""))
        if broker and broker != account.broker:
            updates["broker"] = broker
        funds = client.funds()
        if funds.ok:
            broker_session = funds_verdict(funds.data, account.funds)
        if broker_session == "real":
            updates.update(
                status=Status.CONNECTED,
                consecutive_failures=0,
                last_ok_at=now,
                latency_ms=round(res.latency_ms),
                last_error="",
                **funds_fields(funds, now),
            )
        elif broker_session is not None:
            # Stored funds stay as they were: the last real figures, and the yardstick for zeros.
            updates.update(
                status=Status.BROKER_UNKNOWN,
                consecutive_failures=0,
                latency_ms=round(res.latency_ms),
                last_error=f"OpenAlgo answers, but {broker_session}: is the broker logged in at OpenAlgo?",
            )
        else:
            res = funds  # OpenAlgo answered ping but not funds: a failed check like any other
    if broker_session is None:
        failures = account.consecutive_failures + 1
        updates.update(consecutive_failures=failures, last_error=public_error(res), latency_ms=None)
        if res.reason is Reason.AUTH and openalgo_shaped(res):
            updates["status"] = Status.SESSION_EXPIRED if client.key_is_valid() else Status.INVALID_KEY
        elif failures >= settings.HEALTH_FAILURES_FOR_DOWN:
            updates["status"] = Status.DOWN
        elif before in (Status.CONNECTED, Status.UNKNOWN, Status.DEGRADED):
            updates["status"] = Status.DEGRADED
        else:
            updates["status"] = before
    with transaction.atomic():
        TradingAccount.objects.filter(pk=account.pk).update(**updates)
        account.refresh_from_db()
        if account.status != before:
            audit_record(
                action=AuditEvent.Action.CONNECTION_CHANGED,
                user=account.owner,
                account=account,
                message=f"{account.name}: {before} → {account.status}",
                details={
                    "from": before,
                    "to": account.status,
                    "error": account.last_error,
                    "outcome": str(res.outcome if not res.ok else Outcome.ACCEPTED),
                },
            )
        if account.status == Status.BROKER_UNKNOWN:
            _broker_session_lost(account, first_time=before != Status.BROKER_UNKNOWN)
        elif broker_session == "real":
            account_resume_if_reduced_by(
                account=account,
                reason=BROKER_UNKNOWN_REASON,
                message="Active again: the broker's funds read real figures",
            )
        if account.holds_data_role and account.status not in (Status.CONNECTED, Status.DEGRADED):
            _move_data_role(owner=account.owner, reason=f"{account.name} is {account.get_status_display().lower()}")
        elif (
            account.is_primary
            and account.is_healthy
            and not TradingAccount.objects.filter(owner=account.owner, holds_data_role=True).exists()
        ):
            _move_data_role(owner=account.owner, to=account, reason="no account held the market-data role")
        account.refresh_from_db()
        events.account_updated(account)
    return account


def _broker_session_lost(account: TradingAccount, *, first_time: bool) -> None:
    """Exits only while nothing the broker says can be trusted (an entry would go out blind);
    alerted once per episode."""
    account_reduce(
        account=account,
        reason=BROKER_UNKNOWN_REASON,
        message=f"Reducing only: {BROKER_UNKNOWN_REASON}",
    )
    if first_time:
        alert_raise(
            kind=Alert.Kind.BROKER_SESSION_UNKNOWN,
            account=account,
            message=f"{account.name}: OpenAlgo answers but the broker does not ({account.last_error}). "
            "New entries are refused until the broker's funds read again; log in to the broker in OpenAlgo.",
        )


# ---------------------------------------------------------------- order mode (semi-auto)
def account_mark_semi_auto(*, account: TradingAccount, evidence: str) -> bool:
    """Record that `account`'s OpenAlgo key is in semi-auto mode ("Action Center"), from a reply
    that proves it (a pending_order_id instead of an orderid, or a 403 "not allowed in
    Semi-Auto mode"). Audited, alerted and pushed only when the mode changed."""
    return _order_mode_set(account, TradingAccount.OrderMode.SEMI_AUTO, evidence)


def account_mark_auto(*, account: TradingAccount, evidence: str) -> bool:
    """Record that `account` places orders directly (a placement answered with an orderid)."""
    return _order_mode_set(account, TradingAccount.OrderMode.AUTO, evidence)


SEMI_AUTO_ALERT_QUIET = dt.timedelta(minutes=10)


def account_exit_refused_semi_auto(*, account: TradingAccount, what: str) -> Alert | None:
    """Alert that an exit to a semi-auto account was refused. A trigger that fires again and
    again (a stop re-evaluated each tick) alerts once per quiet period, not at every refusal."""
    recent = Alert.objects.filter(
        account=account,
        kind=Alert.Kind.SEMI_AUTO_EXIT_REFUSED,
        created_at__gte=timezone.now() - SEMI_AUTO_ALERT_QUIET,
    )
    if recent.exists():
        return None
    audit_record(
        action=AuditEvent.Action.CLOSE_REFUSED,
        account=account,
        user=account.owner,
        message=f"{account.name}: exit refused, the account is in semi-auto mode ({what})",
    )
    return alert_raise(
        kind=Alert.Kind.SEMI_AUTO_EXIT_REFUSED,
        level=Alert.Level.CRITICAL,
        account=account,
        message=f"{account.name}: an exit was refused because OpenAlgo is in semi-auto mode ({what}). "
        "The position stays open: close it in OpenAlgo's Action Center or switch the key to auto mode.",
        details={"what": what[:200]},
    )


def _order_mode_set(account: TradingAccount, mode: str, evidence: str) -> bool:
    now = timezone.now()
    with transaction.atomic():
        changed = (
            TradingAccount.objects.filter(pk=account.pk)
            .exclude(order_mode=mode)
            .update(order_mode=mode, order_mode_evidence=evidence[:200], order_mode_at=now)
        )
        account.order_mode, account.order_mode_evidence, account.order_mode_at = mode, evidence[:200], now
        if not changed:
            return False
        fresh = TradingAccount.objects.get(pk=account.pk)
        label = fresh.get_order_mode_display()
        audit_record(
            action=AuditEvent.Action.ORDER_MODE,
            account=fresh,
            message=f"{fresh.name}: orders are placed in {label} mode ({evidence})",
            details={"mode": mode, "evidence": evidence[:200]},
        )
        if mode == TradingAccount.OrderMode.SEMI_AUTO:
            alert_raise(
                kind=Alert.Kind.SEMI_AUTO,
                account=fresh,
                message=f"{fresh.name} is in semi-auto mode at OpenAlgo: entries wait for approval in the "
                "Action Center, and exits are refused here (an automatic exit cannot be guaranteed).",
                details={"evidence": evidence[:200]},
            )
        events.account_updated(fresh)
    return True


KEY_HALT_REASON = "API key cannot be decrypted: re-enter it"


def _mark_key_unreadable(account: TradingAccount) -> TradingAccount:
    with transaction.atomic():
        current = TradingAccount.objects.select_for_update().get(pk=account.pk)
        first_time = current.status != Status.KEY_UNREADABLE
        TradingAccount.objects.filter(pk=account.pk).update(
            status=Status.KEY_UNREADABLE,
            trading_state=TradingAccount.TradingState.HALTED,
            halt_reason=KEY_HALT_REASON,
            last_checked_at=timezone.now(),
            last_error="stored API key cannot be decrypted",
        )
        account.refresh_from_db()
        if first_time:
            log.error("account %s: stored API key cannot be decrypted; halted", account.pk)
            alert_raise(
                kind=Alert.Kind.KEY_UNREADABLE,
                level=Alert.Level.CRITICAL,
                account=account,
                message=f"{account.name}: the stored API key cannot be used; the account is halted and nothing "
                "is sent to its broker. Re-enter the API key on the account page.",
            )
            audit_record(
                action=AuditEvent.Action.KEY_UNREADABLE,
                user=account.owner,
                account=account,
                message=f"{account.name}: API key unreadable, account halted",
                # What the trader had set, given back when the key reads again.
                details={"previous_state": current.trading_state, "previous_reason": current.halt_reason},
            )
        if account.holds_data_role:
            _move_data_role(owner=account.owner, reason=f"{account.name}'s key is unreadable")
        events.account_updated(account)
    return account


def _key_readable_again(account: TradingAccount) -> None:
    """The stored key decrypts again (the key list was put right, e.g. after a rotation): the
    account leaves "key unreadable" and, if it is still halted for that alone, gets back the
    trading state it had before. Audited once; the health check then sets its connection status."""
    with transaction.atomic():
        moved = TradingAccount.objects.filter(pk=account.pk, status=Status.KEY_UNREADABLE).update(
            status=Status.UNKNOWN, last_error=""
        )
        if not moved:
            return
        last = AuditEvent.objects.filter(account=account, action=AuditEvent.Action.KEY_UNREADABLE).order_by("-pk")
        before = (last.values_list("details", flat=True).first() or {}) if last.exists() else {}
        state = before.get("previous_state") or TradingAccount.TradingState.ACTIVE
        reason = before.get("previous_reason", "") if state != TradingAccount.TradingState.ACTIVE else ""
        restored = TradingAccount.objects.filter(
            pk=account.pk, trading_state=TradingAccount.TradingState.HALTED, halt_reason=KEY_HALT_REASON
        ).update(trading_state=state, halt_reason=reason)
        account.refresh_from_db()
        log.warning("account %s: stored API key decrypts again", account.pk)
        audit_record(
            action=AuditEvent.Action.KEY_READABLE,
            user=account.owner,
            account=account,
            message=f"{account.name}: API key readable again"
            + (f"; trading state back to {account.get_trading_state_display().lower()}" if restored else ""),
            details={"restored_state": state if restored else None},
        )
        if restored:
            _trading_state_changed(account, state, f"{account.get_trading_state_display()}: the API key decrypts again")
        events.account_updated(account)


def _move_data_role(*, owner, reason: str, to: TradingAccount | None = None, user_action: bool = False) -> None:
    """Give the market-data role to `to`, or to the healthiest active account (lowest latency)."""
    accounts = list(TradingAccount.objects.select_for_update().filter(owner=owner))
    current = next((a for a in accounts if a.holds_data_role), None)
    if to is None:
        healthy = [a for a in accounts if a.is_active and a.is_healthy and a != current]
        to = min(healthy, key=lambda a: (a.latency_ms if a.latency_ms is not None else 10**9, a.pk), default=None)
    if to is None and current is None:
        # Nobody holds the role (its holder was deleted): the primary gets it even before its
        # first check, so the feed has an account to try.
        to = next((a for a in accounts if a.is_primary and a.is_active), None)
    if to is None or to == current:
        if current is not None and not user_action:
            log.warning("market-data role stays on %s: no healthy backup (%s)", current.pk, reason)
        return
    TradingAccount.objects.filter(owner=owner, holds_data_role=True).update(holds_data_role=False)
    TradingAccount.objects.filter(pk=to.pk).update(holds_data_role=True)
    audit_record(
        action=AuditEvent.Action.DATA_ROLE_MOVED,
        user=owner,
        account=to,
        message=f"market data now from {to.name} ({reason})",
        details={
            "from": current.name if current else None,
            "to": to.name,
            "reason": reason,
            "automatic": not user_action,
        },
    )
    for a in TradingAccount.objects.filter(owner=owner):
        events.account_updated(a)


def data_role_assign(*, account: TradingAccount, request=None) -> None:
    """The user hands the market-data role to an account (e.g. back to the recovered primary)."""
    if not account.is_healthy:
        raise ValueError(f"{account.name} is not connected; it cannot serve market data.")
    with transaction.atomic():
        _move_data_role(owner=account.owner, to=account, reason="chosen by the user", user_action=True)


# ---------------------------------------------------------------- trading state and funds
# Written here for trading (reconciliation halts and resumes, the trader's switch, the funds its
# cycle reads). The conditional UPDATEs are compare-and-set guards: a worker that lost a race
# changes nothing and announces nothing.
def account_halt(*, account: TradingAccount, reason: str, message: str) -> bool:
    """ACTIVE → HALTED with `reason`. An account already reducing or halted keeps its state and
    reason (the trader's, or an earlier halt's). Audited and pushed only when the state moved."""
    halted = TradingAccount.objects.filter(pk=account.pk, trading_state=TradingAccount.TradingState.ACTIVE).update(
        trading_state=TradingAccount.TradingState.HALTED, halt_reason=reason[:200]
    )
    if halted:
        _trading_state_changed(account, TradingAccount.TradingState.HALTED, message)
    return bool(halted)


def account_reduce(*, account: TradingAccount, reason: str, message: str) -> bool:
    """ACTIVE → REDUCING (exits only) with `reason`. An account already reducing or halted keeps
    its state and reason (a halt is the stricter state). Audited and pushed only when it moved."""
    moved = TradingAccount.objects.filter(pk=account.pk, trading_state=TradingAccount.TradingState.ACTIVE).update(
        trading_state=TradingAccount.TradingState.REDUCING, halt_reason=reason[:200]
    )
    if moved:
        _trading_state_changed(account, TradingAccount.TradingState.REDUCING, message)
    return bool(moved)


def account_resume_if_halted_by(*, account: TradingAccount, reason: str, message: str) -> bool:
    """HALTED → ACTIVE, only when the halt was for `reason`: a halt set by the trader or for
    another cause stays. Audited and pushed only when the state moved."""
    resumed = TradingAccount.objects.filter(
        pk=account.pk, trading_state=TradingAccount.TradingState.HALTED, halt_reason=reason[:200]
    ).update(trading_state=TradingAccount.TradingState.ACTIVE, halt_reason="")
    if resumed:
        _trading_state_changed(account, TradingAccount.TradingState.ACTIVE, message)
    return bool(resumed)


def account_resume_if_reduced_by(*, account: TradingAccount, reason: str, message: str) -> bool:
    """REDUCING → ACTIVE, only when it was moved there for `reason` (as
    `account_resume_if_halted_by` for a halt). Audited and pushed only when the state moved."""
    resumed = TradingAccount.objects.filter(
        pk=account.pk, trading_state=TradingAccount.TradingState.REDUCING, halt_reason=reason[:200]
    ).update(trading_state=TradingAccount.TradingState.ACTIVE, halt_reason="")
    if resumed:
        _trading_state_changed(account, TradingAccount.TradingState.ACTIVE, message)
    return bool(resumed)


def account_trading_state_set(*, user, account_id: int, state: str, reason: str = "") -> TradingAccount:
    """The trader's own switch on one of their accounts: ACTIVE, REDUCING (exits only) or HALTED
    (no new orders). Always audited and pushed. Raises ValueError for an unknown state."""
    if state not in TradingAccount.TradingState.values:
        raise ValueError(f"unknown trading state {state!r}")
    account = TradingAccount.objects.get(pk=account_id, owner=user)
    reason = reason.strip()[:200]
    if state != TradingAccount.TradingState.ACTIVE and not reason:
        reason = "set by the trader"
    TradingAccount.objects.filter(pk=account.pk).update(
        trading_state=state, halt_reason="" if state == TradingAccount.TradingState.ACTIVE else reason
    )
    account.refresh_from_db()
    message = account.get_trading_state_display() + (f": {reason}" if reason else "")
    _trading_state_changed(account, state, message, user=user)
    return account


def _trading_state_changed(account: TradingAccount, state: str, message: str, user=None) -> None:
    audit_record(
        action=AuditEvent.Action.TRADING_STATE, user=user, account=account, message=message, details={"state": state}
    )
    # Read again: the caller's copy may predate the conditional update that just moved it.
    events.account_updated(TradingAccount.objects.get(pk=account.pk))


def account_funds_store(*, account_ids: list[int], funds: dict, funds_at) -> int:
    """Store funds as `funds_fields` shaped them on these accounts (one UPDATE, no push: the
    dashboard reads them on its next health check)."""
    return TradingAccount.objects.filter(pk__in=account_ids).update(funds=funds, funds_at=funds_at)


def accounts_due_for_check(*, now, market_open: bool) -> list[int]:
    interval = settings.HEALTH_INTERVAL_OPEN if market_open else settings.HEALTH_INTERVAL_CLOSED
    due = []
    for pk, last in TradingAccount.objects.filter(is_active=True).values_list("pk", "last_checked_at"):
        # A little slack so a 30 s beat does not skip every other run.
        if last is None or (now - last).total_seconds() >= interval - 5:
            due.append(pk)
    return due
