"""The broker's books, copied per account, and reconciliation of our positions against them
(invariants I6 and I8).

Every cycle (and when a worker starts) each account's positionbook is read and compared with the
positions our own fills built. Instruments with an order still in flight are left out of the
comparison: their fill may simply not have been polled yet. Differences are flagged, never fixed
silently; `position_repair` adopts the broker's figure only after reading it again and finding it
unchanged. An account whose positionbook cannot be read is "unknown" and halted for new orders until
a read succeeds again; exits and cancels stay allowed.

A positionbook that reads, but without an instrument we hold (empty, typically: some servers
answer a broker failure or an expired session with 200 and `[]`), is unknown in exactly the same
way — never "flat", so no MISSING flags and no differences are written from it (brokerbooks
.check_positionbook); a tradebook without the trades of our fills today is likewise not stored.
Consecutive bad reads are counted per book and alerted on (bookwatch.py).

The broker's own MIS square-off (past the exchange's square-off time, the broker closes intraday
positions with orders of its own) is adopted rather than flagged, when it is exactly that
(brokerbooks.broker_square_offs): our MIS position, the broker's 0, and trades in the tradebook
that are not ours, all on the closing side, for exactly our quantity. It is booked as one
completed order of the broker's (so its trades are ours from then on and never adopted twice)
with its fill, and audited. Anything less stays a difference for a person.
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
from core.calendar import IST
from marketdata.services import valid_key

from .. import brokerbooks, events, generation, pnl
from ..models import BrokerBook, Order, Position, Reconciliation
from . import bookwatch, enqueue
from .common import OrderRefused
from .fills import positions_register_interest
from .outcome import day_start

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
KEY_UNREADABLE_REFUSAL = (
    "{name}: the stored API key cannot be decrypted, so nothing was sent to the broker. "
    "The account is halted: re-enter its API key on the account page (or, after an encryption-key "
    "change, restore the key list: it resumes by itself once its key decrypts again)."
)


def account_client_or_refuse(account: TradingAccount):
    """The account's broker client for a trader's action, or a refusal in words when its stored key
    does not decrypt (the accounts service has halted it): nothing reaches the broker (S6)."""
    try:
        return account_client(account)
    except crypto.KeyUnreadable:
        raise OrderRefused(KEY_UNREADABLE_REFUSAL.format(name=account.name)) from None


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


def positions_held(account_id: int, now: dt.datetime | None = None) -> dict[brokerbooks.Key, int]:
    """The positions the broker's positionbook must list (brokerbooks.check_positionbook): every
    non-zero one of ours, except delivery (CNC) bought before today, which the broker has moved
    to holdings by now and no longer shows among positions."""
    rows = Position.objects.filter(account_id=account_id).exclude(quantity=0)
    rows = rows.exclude(product=Order.Product.CNC, updated_at__lt=day_start(now))
    return {(e, s, p): q for e, s, p, q in rows.values_list("exchange", "symbol", "product", "quantity")}


def _read_positions(account: TradingAccount, client) -> dict[brokerbooks.Key, brokerbooks.BrokerPosition]:
    """The positionbook, trusted only if it lists every instrument we hold (BookUnreadable
    otherwise, BookUnknown included); each read counted for the alert (bookwatch)."""
    try:
        book = _read(client, "positionbook", brokerbooks.parse_positionbook)
        brokerbooks.check_positionbook(book, positions_held(account.pk))
    except brokerbooks.BookUnreadable as e:
        bookwatch.read_bad(account, bookwatch.POSITIONS, str(e))
        raise
    bookwatch.read_good(account, bookwatch.POSITIONS)
    return book


def _filled_today(account: TradingAccount) -> list[str]:
    return list(
        Order.objects.filter(
            account=account, broker_orderid__isnull=False, filled_quantity__gt=0, sent_at__gte=day_start()
        ).values_list("broker_orderid", flat=True)
    )


def _read_trades(account: TradingAccount, client) -> list[dict]:
    """The tradebook, trusted only if it holds the trades of every order of ours filled today."""
    try:
        trades = _read(client, "tradebook", brokerbooks.parse_tradebook)
        brokerbooks.check_tradebook(trades, _filled_today(account))
    except brokerbooks.BookUnreadable as e:
        bookwatch.read_bad(account, bookwatch.TRADES, str(e))
        raise
    bookwatch.read_good(account, bookwatch.TRADES)
    return trades


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
    if fields := funds_fields(client.funds(), now, previous=account.funds):  # so the funds tab follows fills too
        account_services.account_funds_store(account_ids=[account.pk], **fields)
    for kind, read in (
        (BrokerBook.Kind.TRADES, _read_trades),
        (BrokerBook.Kind.HOLDINGS, lambda a, c: _read(c, "holdings", brokerbooks.parse_holdings)),
    ):
        try:
            _store(account, kind, now, rows=read(account, client))
        except brokerbooks.BookUnreadable as e:
            _store(account, kind, now, error=str(e))
    return recon


def _reconcile_positions(account: TradingAccount, client, now: dt.datetime) -> Reconciliation:
    # The generation is read BEFORE the book: a restart during the read makes it an older one's.
    gen = generation.current()
    try:
        book = _read_positions(account, client)
    except brokerbooks.BookUnreadable as e:
        _store(account, BrokerBook.Kind.POSITIONS, now, error=str(e))
        return _unknown(account, now, str(e), gen)
    _store(account, BrokerBook.Kind.POSITIONS, now, rows=[_position_json(p) for p in book.values()])
    _adopt_square_offs(account, client, book, now)
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


def _differences(account: TradingAccount, book) -> list[brokerbooks.Difference]:
    settling = _settling(account)
    return [d for d in brokerbooks.compare(_ours(account), book) if (d.exchange, d.symbol, d.product) not in settling]


def _adopt_square_offs(account: TradingAccount, client, book, now: dt.datetime) -> None:
    """Book the broker's own MIS square-off as its fill (see the module docstring)."""
    if now.astimezone(IST).time() < brokerbooks.SQUARE_OFF:
        return
    candidates = [d for d in _differences(account, book) if d.product == "MIS" and d.ours and d.broker == 0]
    if not candidates:
        return
    try:
        trades = _read_trades(account, client)
    except brokerbooks.BookUnreadable:
        return  # flagged as a difference this cycle; looked at again on the next
    today = Order.objects.filter(account=account, created_at__gte=day_start(now))
    squared = brokerbooks.broker_square_offs(
        candidates,
        trades,
        our_orderids=today.exclude(broker_orderid__isnull=True).values_list("broker_orderid", flat=True),
        our_tags=[f"am{pk}" for pk in today.values_list("pk", flat=True)],
        ist_time=now.astimezone(IST).time(),
    )
    ours = {(d.exchange, d.symbol, d.product): d.ours for d in candidates}
    for sq in squared:
        _book_square_off(account, sq, ours[(sq.exchange, sq.symbol, sq.product)])


def _book_square_off(account: TradingAccount, sq: brokerbooks.SquareOff, expected: int) -> None:
    with transaction.atomic():
        pos = Position.objects.select_for_update().get(
            account=account, exchange=sq.exchange, symbol=sq.symbol, product=sq.product
        )
        if pos.quantity != expected:
            return  # moved meanwhile (a fill, another reconcile): the next cycle reads it again
        order = Order.objects.create(
            account=account,
            idempotency_key=f"square-off:{account.pk}:{sq.orderids[0]}"[:120],
            symbol=sq.symbol,
            exchange=sq.exchange,
            action=sq.action,
            quantity=sq.quantity,
            product=sq.product,
            reduce_only=True,
            status=Order.Status.COMPLETE,
            broker_orderid=sq.orderids[0],
            broker_status="squared off by the broker",
            filled_quantity=sq.quantity,
            average_price=sq.price,
            note="squared off by the broker (MIS, past its square-off time)",
        )
        before = {"quantity": pos.quantity, "average_price": str(pos.average_price), "realized": str(pos.realized)}
        state = pnl.apply_fill(
            pnl.Position(pos.quantity, pos.average_price, pos.realized), pnl.Fill(sq.action, sq.quantity, sq.price)
        )
        pos.quantity, pos.average_price, pos.realized = state.quantity, state.average_price, state.realized
        pos.save()
        audit_record(
            action=AuditAction.POSITION_REPAIRED,
            account=account,
            message=f"{sq.exchange}:{sq.symbol} MIS squared off by the broker: {sq.action} {sq.quantity} at {sq.price}",
            details={
                "source": "broker_square_off",
                "order_id": order.pk,
                "broker_orderids": list(sq.orderids),
                "before": before,
                "after": {"quantity": pos.quantity, "realized": str(pos.realized)},
            },
        )
        pos.account = account
        events.position_changed(pos)
        transaction.on_commit(positions_register_interest)
    events.order_changed(order)


def _compare(account: TradingAccount, book, now: dt.datetime, gen: int) -> Reconciliation:
    diffs = _differences(account, book)
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
    if not valid_key(f"{exchange}:{symbol}"):
        # Adopting it would book a position nothing can price or exit from here (finding 8).
        raise OrderRefused(f"{exchange}:{symbol} is not an instrument AlgoMirror can price: nothing was changed")
    key = (exchange, symbol, product)
    if key in _settling(account):
        raise OrderRefused(f"{symbol}: an order is still in flight; repair once it has settled")
    gen = generation.current()
    try:
        book = _read_positions(account, account_client_or_refuse(account))
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
