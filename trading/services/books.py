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
from typing import TYPE_CHECKING

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from accounts import crypto
from accounts import services as account_services
from accounts.choices import AuditAction, TradingState
from accounts.selectors import account_get_by_id, account_get_owned, account_ids_active
from accounts.services import account_client, audit_record, funds_fields

from .. import brokerbooks, generation
from ..models import BrokerBook, Order, Position, Reconciliation
from . import enqueue
from .common import OrderRefused
from .fills import positions_register_interest

if TYPE_CHECKING:
    from accounts.models import TradingAccount

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
    account = account_get_by_id(pk=account_id)
    try:
        client = account_client(account)
    except crypto.KeyUnreadable:
        return _unknown(account, now, "API key unreadable")
    recon = _reconcile_positions(account, client, now)
    if fields := funds_fields(client.funds(), now):  # so the funds tab follows fills too
        account_services.account_funds_store(account_ids=[account.pk], **fields)
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
    # The generation is read BEFORE the book: a restart during the read makes it an older one's.
    gen = generation.current()
    try:
        book = _read(client, "positionbook", brokerbooks.parse_positionbook)
    except brokerbooks.BookUnreadable as e:
        _store(account, BrokerBook.Kind.POSITIONS, now, error=str(e))
        return _unknown(account, now, str(e), gen)
    _store(account, BrokerBook.Kind.POSITIONS, now, rows=[_position_json(p) for p in book.values()])
    return _compare(account, book, now, gen)


def account_reconcile_if_stale(*, account: TradingAccount, now: dt.datetime | None = None) -> Reconciliation | None:
    """Reconcile positions now unless a readable positionbook was compared within the last three
    cycles AND since the platform last started (same generation). Called before an account's
    entries are sent, so the first entry after a restart, however short (or after the broker was
    unreadable), waits for a good read (I8). Returns None when the last one is still fresh
    (nothing was read), else the new reconciliation."""
    now = now or timezone.now()
    try:
        recon = account.reconciliation  # select_related by the caller when it can
    except Reconciliation.DoesNotExist:
        recon = None
    fresh = now - dt.timedelta(seconds=3 * settings.RECONCILE_SECONDS)
    if (
        recon is not None
        and recon.state != State.UNKNOWN
        and recon.checked_at >= fresh
        and recon.generation == generation.current()
    ):
        return None
    try:
        client = account_client(account)
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


def _unknown(account: TradingAccount, now: dt.datetime, error: str, gen: int | None = None) -> Reconciliation:
    recon, _ = Reconciliation.objects.update_or_create(
        account=account,
        defaults={
            "state": State.UNKNOWN,
            "error": error[:300],
            "checked_at": now,
            "generation": generation.current() if gen is None else gen,
        },
    )
    # Fail closed: no new entries on an account we cannot see. Exits and cancels stay allowed.
    # Audited and pushed only when the state really moves (a cycle that changes nothing is silent).
    account_services.account_halt(
        account=account, reason=HALT_REASON, message=f"halted: broker positions unreadable ({error})"
    )
    return recon


def _compare(account: TradingAccount, book, now: dt.datetime, gen: int) -> Reconciliation:
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
            "generation": gen,
            **({} if diffs else {"matched_at": now}),
        },
    )
    if diffs and (previous is None or previous.differences != rows):
        audit_record(
            action=AuditAction.RECONCILIATION,
            account=account,
            message=f"{len(diffs)} position(s) differ from the broker",
            details={"differences": rows},
        )
    # Only our own halt is lifted: one the trader set stays.
    account_services.account_resume_if_halted_by(
        account=account, reason=HALT_REASON, message="active again: broker positions readable"
    )
    return recon


def position_repair(
    *, user, account_id: int, exchange: str, symbol: str, product: str, expected_ours: int, expected_broker: int
) -> Position:
    """Adopt the broker's quantity for one instrument, guarded: the broker is read again, and the
    repair is refused if either side changed since the trader looked, or an order is in flight."""
    account = account_get_owned(user=user, pk=account_id)
    key = (exchange, symbol, product)
    if key in _settling(account):
        raise OrderRefused(f"{symbol}: an order is still in flight; repair once it has settled")
    gen = generation.current()
    try:
        book = _read(account_client(account), "positionbook", brokerbooks.parse_positionbook)
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
            action=AuditAction.POSITION_REPAIRED,
            user=user,
            account=account,
            message=f"{exchange}:{symbol} {product} set to the broker's {broker_qty}",
            details={"before": before, "after": {"quantity": broker_qty, "average_price": str(pos.average_price)}},
        )
        transaction.on_commit(positions_register_interest)
    _compare(account, book, timezone.now(), gen)
    return pos


def account_trading_state_set(*, user, account_id: int, state: str, reason: str = "") -> TradingAccount:
    """The trader's own switch: ACTIVE, REDUCING (exits only) or HALTED (no new orders)."""
    if state not in TradingState.values:
        raise OrderRefused(f"unknown trading state {state!r}")
    return account_services.account_trading_state_set(user=user, account_id=account_id, state=state, reason=reason)


def books_refresh_fan_out() -> int:
    """One books task per active account, so a slow broker never holds up the others."""
    ids = account_ids_active()
    for account_id in ids:
        enqueue.books_refresh(account_id)
    return len(ids)
