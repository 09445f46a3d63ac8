"""The broker's books, copied per account, and reconciliation of our positions against them
(invariants I6 and I8).

Every cycle (and when a worker starts) each account's positionbook is read and compared with the
positions our own fills built. Instruments with an order still in flight are left out of the
comparison: their fill may simply not have been polled yet. Differences are flagged, never fixed
silently; `position_repair` adopts the broker's figure only after reading it again and finding it
unchanged. An account whose positionbook cannot be read is "unknown" and halted for new orders until
a read succeeds again; exits and cancels stay allowed.
"""

from __future__ import annotations

import datetime as dt
import logging
from decimal import Decimal

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from accounts import crypto
from accounts.models import AuditEvent, TradingAccount
from accounts.services import audit_record, funds_fields

from .. import brokerbooks, events
from ..models import BrokerBook, Order, Position, Reconciliation
from .orders import OrderRefused, _client, positions_register_interest

log = logging.getLogger(__name__)
State = Reconciliation.State
HALT_REASON = "reconciliation: broker positions unreadable"
IN_FLIGHT = [
    Order.Status.PENDING,
    Order.Status.SENDING,
    Order.Status.UNKNOWN,
    Order.Status.ACCEPTED,
    Order.Status.OPEN,
]


def _store(account: TradingAccount, kind: str, now: dt.datetime, *, rows=None, error: str = "") -> None:
    defaults = {"ok": not error, "error": error[:300], "fetched_at": now}
    if rows is not None:
        defaults["rows"] = rows  # on failure the last good copy stays, marked as not current
    BrokerBook.objects.update_or_create(account=account, kind=kind, defaults=defaults)


def _read(client, endpoint: str, parse):
    return brokerbooks.from_result(getattr(client, endpoint)(), parse)


def _ours(account: TradingAccount) -> dict[brokerbooks.Key, int]:
    return {
        (e, s, p): q
        for e, s, p, q in Position.objects.filter(account=account).values_list(
            "exchange", "symbol", "product", "quantity"
        )
    }


def _settling(account: TradingAccount) -> set[brokerbooks.Key]:
    return set(Order.objects.filter(account=account, status__in=IN_FLIGHT).values_list("exchange", "symbol", "product"))


def account_books_refresh(*, account_id: int, now: dt.datetime | None = None) -> Reconciliation:
    """Copy an account's positions, trades, holdings and funds, and reconcile its positions."""
    now = now or timezone.now()
    account = TradingAccount.objects.get(pk=account_id)
    try:
        client = _client(account)
    except crypto.KeyUnreadable:
        return _unknown(account, now, "API key unreadable")
    recon = _reconcile_positions(account, client, now)
    if fields := funds_fields(client.funds(), now):  # so the funds tab follows fills too
        TradingAccount.objects.filter(pk=account.pk).update(**fields)
    for kind, endpoint, parse in (
        (BrokerBook.Kind.TRADES, "tradebook", brokerbooks.parse_tradebook),
        (BrokerBook.Kind.HOLDINGS, "holdings", brokerbooks.parse_holdings),
    ):
        try:
            _store(account, kind, now, rows=_read(client, endpoint, parse))
        except brokerbooks.BookUnreadable as e:
            _store(account, kind, now, error=str(e))
    return recon


def _reconcile_positions(account: TradingAccount, client, now: dt.datetime) -> Reconciliation:
    try:
        book = _read(client, "positionbook", brokerbooks.parse_positionbook)
    except brokerbooks.BookUnreadable as e:
        _store(account, BrokerBook.Kind.POSITIONS, now, error=str(e))
        return _unknown(account, now, str(e))
    _store(account, BrokerBook.Kind.POSITIONS, now, rows=[_position_json(p) for p in book.values()])
    return _compare(account, book, now)


def account_reconcile_if_stale(*, account: TradingAccount, now: dt.datetime | None = None) -> Reconciliation | None:
    """Reconcile positions now unless a readable positionbook was compared within the last three
    cycles. Called before an account's entries are sent, so the first entry after a restart (or
    after the broker was unreadable) waits for a good read (I8). Returns None when the last one is
    still fresh (nothing was read), else the new reconciliation."""
    now = now or timezone.now()
    try:
        recon = account.reconciliation  # select_related by the caller when it can
    except Reconciliation.DoesNotExist:
        recon = None
    fresh = now - dt.timedelta(seconds=3 * settings.RECONCILE_SECONDS)
    if recon is not None and recon.state != State.UNKNOWN and recon.checked_at >= fresh:
        return None
    try:
        client = _client(account)
    except crypto.KeyUnreadable:
        return _unknown(account, now, "API key unreadable")
    return _reconcile_positions(account, client, now)


def _position_json(p: brokerbooks.BrokerPosition) -> dict:
    return {
        "exchange": p.exchange,
        "symbol": p.symbol,
        "product": p.product,
        "quantity": p.quantity,
        "average_price": str(p.average_price),
    }


def _unknown(account: TradingAccount, now: dt.datetime, error: str) -> Reconciliation:
    recon, _ = Reconciliation.objects.update_or_create(
        account=account, defaults={"state": State.UNKNOWN, "error": error[:300], "checked_at": now}
    )
    # Fail closed: no new entries on an account we cannot see. Exits and cancels stay allowed.
    halted = TradingAccount.objects.filter(pk=account.pk, trading_state=TradingAccount.TradingState.ACTIVE).update(
        trading_state=TradingAccount.TradingState.HALTED, halt_reason=HALT_REASON
    )
    if halted:
        _state_changed(account, "halted", f"halted: broker positions unreadable ({error})")
    return recon


def _state_changed(account: TradingAccount, state: str, message: str, user=None) -> None:
    """Audited, and the owner's pages told — only when the trading state really moved (a
    reconcile cycle that changes nothing stays silent)."""
    audit_record(
        action=AuditEvent.Action.TRADING_STATE, user=user, account=account, message=message, details={"state": state}
    )
    events.account_changed(account.pk)


def _compare(account: TradingAccount, book, now: dt.datetime) -> Reconciliation:
    settling = _settling(account)
    diffs = [d for d in brokerbooks.compare(_ours(account), book) if (d.exchange, d.symbol, d.product) not in settling]
    rows = [d.as_json() for d in diffs]
    previous = Reconciliation.objects.filter(account=account).first()
    recon, _ = Reconciliation.objects.update_or_create(
        account=account,
        defaults={
            "state": State.MISMATCH if diffs else State.MATCHED,
            "differences": rows,
            "error": "",
            "checked_at": now,
            **({} if diffs else {"matched_at": now}),
        },
    )
    if diffs and (previous is None or previous.differences != rows):
        audit_record(
            action=AuditEvent.Action.RECONCILIATION,
            account=account,
            message=f"{len(diffs)} position(s) differ from the broker",
            details={"differences": rows},
        )
    resumed = TradingAccount.objects.filter(
        pk=account.pk, trading_state=TradingAccount.TradingState.HALTED, halt_reason=HALT_REASON
    ).update(trading_state=TradingAccount.TradingState.ACTIVE, halt_reason="")
    if resumed:
        _state_changed(account, "active", "active again: broker positions readable")
    return recon


def position_repair(
    *, user, account_id: int, exchange: str, symbol: str, product: str, expected_ours: int, expected_broker: int
) -> Position:
    """Adopt the broker's quantity for one instrument, guarded: the broker is read again, and the
    repair is refused if either side changed since the trader looked, or an order is in flight."""
    account = TradingAccount.objects.get(pk=account_id, owner=user)
    key = (exchange, symbol, product)
    if key in _settling(account):
        raise OrderRefused(f"{symbol}: an order is still in flight; repair once it has settled")
    try:
        book = _read(_client(account), "positionbook", brokerbooks.parse_positionbook)
    except brokerbooks.BookUnreadable as e:
        raise OrderRefused(f"broker positions unreadable ({e}): nothing was changed") from e
    theirs = book.get(key)
    broker_qty = theirs.quantity if theirs else 0
    with transaction.atomic():
        pos, _ = Position.objects.select_for_update().get_or_create(
            account=account, exchange=exchange, symbol=symbol, product=product
        )
        if broker_qty != expected_broker or pos.quantity != expected_ours:
            raise OrderRefused(
                f"{symbol} changed since you looked (ours {pos.quantity}, broker {broker_qty}): review and try again"
            )
        before = {"quantity": pos.quantity, "average_price": str(pos.average_price)}
        pos.quantity = broker_qty
        pos.average_price = theirs.average_price if theirs and broker_qty else Decimal(0)
        pos.save()
        audit_record(
            action=AuditEvent.Action.POSITION_REPAIRED,
            user=user,
            account=account,
            message=f"{exchange}:{symbol} {product} set to the broker's {broker_qty}",
            details={"before": before, "after": {"quantity": broker_qty, "average_price": str(pos.average_price)}},
        )
        transaction.on_commit(positions_register_interest)
    _compare(account, book, timezone.now())
    return pos


def account_trading_state_set(*, user, account_id: int, state: str, reason: str = "") -> TradingAccount:
    """The trader's own switch: ACTIVE, REDUCING (exits only) or HALTED (no new orders)."""
    if state not in TradingAccount.TradingState.values:
        raise OrderRefused(f"unknown trading state {state!r}")
    account = TradingAccount.objects.get(pk=account_id, owner=user)
    reason = reason.strip()[:200]
    if state != TradingAccount.TradingState.ACTIVE and not reason:
        reason = "set by the trader"
    TradingAccount.objects.filter(pk=account.pk).update(
        trading_state=state, halt_reason="" if state == TradingAccount.TradingState.ACTIVE else reason
    )
    account.refresh_from_db()
    message = account.get_trading_state_display() + (f": {reason}" if reason else "")
    _state_changed(account, state, message, user=user)
    return account
