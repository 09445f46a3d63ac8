"""Fills: an accepted order's status, polled or pushed on the account's WebSocket, applied once
(a compare-and-set on the filled quantity), and booked into our position.

A status can be stale, thin or wrong, so nothing it says moves backwards: the filled quantity
never falls, a known average price is never replaced by "0" (the live profile shows 0.0 until an
order completes), and what filled is read from the tradebook whenever the status does not carry
it (a cancel after a partial fill, Dhan's PART_TRADED).

Broker status words go through one vocabulary (openalgo_client.orderstatus), and no single read
ends an order when it may be wrong: Zerodha's mapping shows a live order's transient state as the
status of the row before it, so a "rejected" or "cancelled" becomes final only when a second read
a little later (ORDER_STATUS_CONFIRM_SECONDS) says it again and the tradebook has been read; a
"rejected" for an order with fills is no rejection; a cancel we asked for and the broker accepted
needs no second read. Before an order read as rejected is settled (an exit tried again), a
cancel proves it dead: refused as already ended, with an empty tradebook after it; accepted, it
was live (_attempt_end). A word we do not recognise is never final: the order is read again with a
growing pause and logged once. An order-update frame for an order we hold as ended triggers a
confirming read: it is reopened if the broker has it live or filled, and fills it shows are
booked once. An order from before the broker's day rolled over that the broker no longer knows
(404) is settled with what we know (attention.py), never left open.
Polling is fair: least recently polled first, every poll stamped, so resting orders cannot take
every slot; an order without a broker id is not polled but settled from the orderbook.
"""

from __future__ import annotations

import datetime as dt
import logging
from decimal import Decimal

from django.conf import settings
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from accounts.services import account_client
from marketdata.services import positions_interest_set
from openalgo_client import orderstatus as vocab
from openalgo_client.orderstatus import Kind, Step
from openalgo_client.rest import Outcome, Reason, to_decimal

from .. import events, pnl
from ..models import Order, Position
from ..selectors import NOT_PROVEN
from . import enqueue
from .attention import EXPIRED_AT_ROLLOVER, exit_needs_attention, sent_before_today, settle_at_rollover
from .common import LIVE, Status
from .outcome import absence_window, exit_attempt_failed, exit_spacing

log = logging.getLogger(__name__)
ENDED = [Status.CANCELLED, Status.REJECTED]
# Noted on an order that read rejected yet took the cancel that was to prove it dead: it was live.
# An exit's attempt is tried again once the broker shows it ended with nothing filled;
# part-filled, the rest needs a human.
CANCELLED_TO_RETRY = "read as ended, yet live: cancelled by AlgoMirror"
FINAL = {Kind.COMPLETE: Status.COMPLETE, Kind.CANCELLED: Status.CANCELLED, Kind.REJECTED: Status.REJECTED}


def confirm_after() -> dt.timedelta:
    return dt.timedelta(seconds=settings.ORDER_STATUS_CONFIRM_SECONDS)


def order_refresh(*, order_id: int, now: dt.datetime | None = None, expecting: Kind | None = None) -> Order:
    """Read one accepted order's status from the broker (fills, cancels, rejects). `expecting`:
    what we asked the broker for and it accepted (a cancel): a read that says so is not doubted."""
    now = now or timezone.now()
    order = Order.objects.select_related("account").get(pk=order_id)
    if order.status not in LIVE:
        return order
    if not order.broker_orderid:
        return _settle_without_id(order)
    Order.objects.filter(pk=order.pk).update(polled_at=now)
    res = account_client(order.account).orderstatus(orderid=order.broker_orderid, strategy=order.tag)
    if not res.ok or not isinstance(res.data, dict):
        if sent_before_today(order, now) and (res.reason is Reason.NOT_FOUND or _absent_from_orderbook(order)):
            why = f"order {order.broker_orderid} no longer known to the broker after its day rolled over"
            return settle_at_rollover(order, why=why, broker_status=EXPIRED_AT_ROLLOVER)
        return order
    return _apply_status(order, res.data, now=now, expecting=expecting)


def _absent_from_orderbook(order: Order) -> bool:
    """A readable orderbook without the order (for a previous day's order, which it cannot hold)."""
    res = account_client(order.account).orderbook()
    data = res.data.get("orders") if res.ok and isinstance(res.data, dict) else res.data
    if not res.ok or not isinstance(data, list):
        return False
    return all(str(r.get("orderid")) != order.broker_orderid for r in data if isinstance(r, dict))


def _settle_without_id(order: Order) -> Order:
    """Accepted, but no broker id to ask about (recorded before "success without an orderid"
    became unknown): it is looked for in the orderbook like any unknown order."""
    if Order.objects.filter(pk=order.pk, status=order.status, broker_orderid__isnull=True).update(
        status=Status.UNKNOWN, absent_reads=0, last_error="accepted without an order id: looking in the orderbook"
    ):
        enqueue.reconcile_later(order.pk, countdown=0)
    order.refresh_from_db()
    events.order_changed(order)
    return order


def order_apply_update(*, account_id: int, data: dict) -> Order | None:
    """An `order_update` pushed on the account's WebSocket. Same path as polling; the
    compare-and-set on the filled quantity makes a duplicate or late update a no-op. An update
    for an order we hold as cancelled or rejected is not ignored: it may say we were wrong."""
    oid = str(data.get("orderid") or "")
    order = Order.objects.select_related("account").filter(account_id=account_id, broker_orderid=oid).first()
    if order is None:
        return None  # not ours (reconciliation flags it), or not yet recorded (the poller settles it)
    if order.status in ENDED:
        said = vocab.classify(data.get("order_status"))
        filled = data.get("filled_quantity")
        if FINAL.get(said) == order.status and filled not in (None, "") and to_decimal(filled) <= order.filled_quantity:
            return order  # the very end we hold, with no fill beyond ours: nothing to confirm
        return _recheck_ended(order, timezone.now())
    if order.status not in LIVE:
        return order
    return _apply_status(order, data, now=timezone.now())


def _recheck_ended(order: Order, now: dt.datetime) -> Order:
    """A frame for an order we settled as cancelled or rejected: read it again. Live or filled at
    the broker → reopened and applied like any read; still ended → whatever the tradebook shows
    filled beyond what we booked is booked (once: the compare-and-set on the filled quantity)."""
    res = account_client(order.account).orderstatus(orderid=order.broker_orderid, strategy=order.tag)
    if res.ok and isinstance(res.data, dict):
        kind = vocab.classify(res.data.get("order_status"))
        if kind in (Kind.LIVE, Kind.COMPLETE):  # evidence, not an unrecognised word
            why = f"the broker shows it {res.data.get('order_status')!s:.30} after we held it {order.status}"
            if Order.objects.filter(pk=order.pk, status=order.status, filled_quantity=order.filled_quantity).update(
                status=Status.OPEN, doubtful_reads=0, poll_after=None, last_error=why[:300]
            ):
                log.warning("order %s (%s): reopened: %s", order.pk, order.broker_orderid, why)
                order.refresh_from_db()
                return _apply_status(order, res.data, now=now)
            order.refresh_from_db()
            return order
    traded = _traded(order)
    if traded is None or traded[0] <= order.filled_quantity:
        return order
    qty, avg = min(traded[0], order.quantity), traded[1]
    status = Status.COMPLETE if qty >= order.quantity else order.status
    return _book(order, status=status, qty=qty, avg=avg, fields={"last_error": "late fills from the tradebook"})


def _traded(order: Order) -> tuple[int, Decimal | None] | None:
    """The quantity and average price of `order`'s trades in the broker's tradebook (None when
    the tradebook cannot be read)."""
    res = account_client(order.account).tradebook()
    if not res.ok or not isinstance(res.data, list):
        return None
    qty, value = 0, Decimal(0)
    for row in res.data:
        if isinstance(row, dict) and str(row.get("orderid")) == order.broker_orderid:
            q = int(to_decimal(row.get("quantity")))
            qty += q
            value += q * to_decimal(row.get("average_price") or row.get("price"))
    return qty, (value / qty if qty else None)


def _confirms(order: Order, kind: Kind, now: dt.datetime) -> bool:
    """An earlier read, at least the confirmation pause ago, said the same terminal word."""
    return (
        order.doubtful_reads > 0
        and vocab.classify(order.broker_status) is kind
        and order.poll_after is not None
        and now >= order.poll_after
    )


def _apply_status(order: Order, d: dict, *, now: dt.datetime, expecting: Kind | None = None) -> Order:
    text = str(d.get("order_status", ""))
    kind = vocab.classify(text)
    row_avg = to_decimal(d.get("average_price"), None) or None  # 0 means "not known yet", never a price
    row_qty = int(to_decimal(d.get("filled_quantity"))) if d.get("filled_quantity") not in (None, "") else None
    known = order.filled_quantity
    traded: tuple[int, Decimal | None] | None = None
    if kind in (Kind.CANCELLED, Kind.REJECTED, Kind.UNRECOGNISED) or (
        row_qty is None and vocab.says_partly_filled(text)
    ):
        traded = _traded(order)  # what filled, whatever the word says
    confirming = (expecting is not None and kind is expecting) or _confirms(order, kind, now)
    verdict = vocab.judge(
        kind,
        quantity=order.quantity,
        filled=max(known, row_qty or 0),
        traded=traded[0] if traded else None,
        confirming=confirming,
    )
    avg = row_avg or (traded[1] if traded else None)
    if verdict.step is Step.FINAL and verdict.kind is Kind.COMPLETE:
        status = Status.COMPLETE
        qty = row_qty if row_qty is not None else order.quantity
        if traded and traded[0] >= order.quantity:
            avg = traded[1] or avg
    else:
        status = FINAL.get(verdict.kind, Status.OPEN) if verdict.step is Step.FINAL else Status.OPEN
        qty = max(row_qty or 0, traded[0] if traded else 0)
        if status in ENDED and traded:
            avg = traded[1] or avg  # the tradebook's average over every fill, not one fill's price
    qty = min(max(qty, known), order.quantity)  # a stale status never takes a fill back
    fields = {"broker_status": text[:30], "doubtful_reads": 0, "poll_after": None}
    if qty > known and not avg:
        # Filled, but no fill price yet (OpenAlgo's tradebook lag): book nothing, look again.
        qty, status = known, Status.OPEN
    if verdict.step in (Step.CONFIRM, Step.DOUBT):
        fields.update(_doubt(order, verdict, text, now))
    elif order.doubtful_reads:
        fields["last_error"] = ""  # the doubt is over
    if qty == 0 and (
        status == Status.REJECTED
        or (order.reduce_only and status == Status.CANCELLED and order.note.endswith(CANCELLED_TO_RETRY))
    ):
        # Two "rejected" reads prove nothing on Zerodha: a live order behind a rejected row reads
        # so as long as it stays pending. Proven dead first; then an entry is rejected, and an
        # exit the broker refused is not the end of it: tried again, spaced, then attention.
        reason = d.get("rejection_reason") or d.get("message")
        return _attempt_end(order, text=text, reason=str(reason or ""), fields=fields, now=now)
    order = _book(order, status=status, qty=qty, avg=avg, fields=fields)
    if order.reduce_only and order.status == Status.CANCELLED and order.note.endswith(CANCELLED_TO_RETRY):
        # The cancel that proved the attempt live caught it part-filled: the rest needs a human.
        why = f"exit attempt {order.broker_orderid} was live, cancelled with {order.filled_quantity} filled"
        exit_needs_attention(order, why, statuses=(Status.CANCELLED,))
        order.refresh_from_db()
    return order


def _attempt_end(order: Order, *, text: str, reason: str, fields: dict, now: dt.datetime) -> Order:
    """An order reads rejected (or an exit's attempt we cancelled reads ended) with nothing
    filled. It is proven dead before anything follows: a cancel is sent for it. Refused because
    the order already ended, and the tradebook read after that refusal shows nothing filled →
    dead: an entry is rejected, an exit tried again (outcome.exit_attempt_failed). Accepted → it
    was live: it stays ours, read again as the cancel ends it (a fill before the cancel is booked;
    an exit's end with nothing filled is then proven the same way). Anything else proves nothing:
    read again later; after as long as an exit's retries would take, an exit needs a human and an
    entry is taken as rejected. Never a second exit while the first may be live."""
    res = account_client(order.account).cancelorder(orderid=order.broker_orderid, strategy=order.tag)
    limit = absence_window() + exit_spacing() * settings.EXIT_MAX_ATTEMPTS
    waited = order.sent_at is not None and now - order.sent_at >= limit
    proven = False
    if not res.ok and res.outcome is Outcome.REJECTED and vocab.cancel_refusal_says_ended(res.message):
        traded = _traded(order)
        proven = traded is not None and traded[0] == 0
    if not order.reduce_only and (proven or (waited and not res.ok)):
        why = reason or "rejected by the broker"
        if not proven:
            why = f"{why} {NOT_PROVEN} cancel answered {res.message or res.reason})"
        fields["last_error"] = why[:300]
        return _book(order, status=Status.REJECTED, qty=order.filled_quantity, avg=None, fields=fields)
    if proven:
        why = f"the broker rejected order {order.broker_orderid}"
        exit_attempt_failed(order, why=f"{why}: {reason}" if reason else why)
        order.refresh_from_db()
        events.order_changed(order)
        return order
    if res.ok:
        why = f"read {text!r} yet took a cancel: it was live; waiting for the cancel to end it"
        log.warning("order %s (%s): %s", order.pk, order.broker_orderid, why)
        note = order.note if order.note.endswith(CANCELLED_TO_RETRY) else f"{order.note} · {CANCELLED_TO_RETRY}"
        fields.update(note=note.strip(" ·")[-200:], doubtful_reads=0, poll_after=now + confirm_after())
    else:
        why = f"read {text!r}, not proven dead (cancel: {res.message or res.reason}): not tried again yet"
        reads = order.doubtful_reads + 1
        fields.update(doubtful_reads=reads, poll_after=now + dt.timedelta(seconds=vocab.doubt_backoff(reads)))
        if waited:
            exit_needs_attention(order, f"exit attempt {order.broker_orderid} {why}", statuses=tuple(LIVE))
            order.refresh_from_db()
            events.order_changed(order)
            return order
    fields["last_error"] = why[:300]
    return _book(order, status=Status.OPEN, qty=order.filled_quantity, avg=None, fields=fields)


def _doubt(order: Order, verdict: vocab.Verdict, text: str, now: dt.datetime) -> dict:
    """The fields that record a read not taken at its word, and when to read the order again."""
    if verdict.step is Step.CONFIRM:
        waiting = order.doubtful_reads > 0 and vocab.classify(order.broker_status) is verdict.kind
        if waiting and order.poll_after is not None:  # already waiting for its confirming read
            return {"doubtful_reads": order.doubtful_reads, "poll_after": order.poll_after, "last_error": verdict.why}
        return {"doubtful_reads": 1, "poll_after": now + confirm_after(), "last_error": verdict.why[:300]}
    reads = order.doubtful_reads + 1
    if not (order.doubtful_reads > 0 and order.broker_status == text[:30]):  # once per word, not per read
        log.warning(
            "order %s (%s) on account %s: broker status %r not recognised or contradicting (%s); read again later",
            order.pk,
            order.broker_orderid,
            order.account_id,
            text,
            verdict.why,
        )
    pause = dt.timedelta(seconds=vocab.doubt_backoff(reads))
    return {"doubtful_reads": reads, "poll_after": now + pause, "last_error": f"{text!r}: {verdict.why}"[:300]}


def _book(order: Order, *, status: str, qty: int, avg: Decimal | None, fields: dict) -> Order:
    """Write what a read settled, booking the newly filled part once: a compare-and-set on the
    status and filled quantity the read started from (two pollers racing apply a fill once)."""
    known = order.filled_quantity
    average = avg if qty > known else order.average_price  # a known average never vanishes
    read_in = LIVE if order.status in LIVE else [order.status]
    with transaction.atomic():
        changed = Order.objects.filter(pk=order.pk, status__in=read_in, filled_quantity=known).update(
            status=status, filled_quantity=qty, average_price=average, **fields
        )
        if changed and qty > known:
            _apply_fill(order, qty, avg)
        order.refresh_from_db()
        if changed:
            events.order_changed(order)
    return order


def _apply_fill(order: Order, new_qty: int, new_avg: Decimal) -> None:
    """Book the newly filled part of `order` (quantity and price of the delta) into its position."""
    old_qty, old_avg = order.filled_quantity, order.average_price or Decimal(0)
    delta = new_qty - old_qty
    price = (new_avg * new_qty - old_avg * old_qty) / delta
    pos, _ = Position.objects.select_for_update().get_or_create(
        account=order.account, symbol=order.symbol, exchange=order.exchange, product=order.product
    )
    state = pnl.apply_fill(
        pnl.Position(pos.quantity, pos.average_price, pos.realized), pnl.Fill(order.action, delta, price)
    )
    pos.quantity, pos.average_price, pos.realized = state.quantity, state.average_price, state.realized
    pos.save()
    pos.account = order.account
    events.position_changed(pos)
    transaction.on_commit(positions_register_interest)


def positions_register_interest() -> None:
    """Open positions are what the feed must stream for P&L and risk (marketdata interest)."""
    by_user: dict[int, dict[str, int]] = {}
    for uid, e, s in Position.objects.exclude(quantity=0).values_list("account__owner_id", "exchange", "symbol"):
        by_user.setdefault(uid, {})[f"{e}:{s}"] = 1
    positions_interest_set(by_user)  # per user: one user's bad symbol never stops another's prices


def orders_poll_account(*, account_id: int, limit: int = 2, now: dt.datetime | None = None) -> int:
    """Refresh the open orders of one account, at most `limit` a run (1 request/s at a 2 s beat),
    least recently polled first. `updated_at` cannot order them: a QuerySet.update() never moves
    it, so the same oldest orders would be polled forever. An order whose last read was doubtful
    waits for its `poll_after` (a confirming read a little later, or an unrecognised status's
    growing pause)."""
    now = now or timezone.now()
    live = Order.objects.filter(account_id=account_id, status__in=LIVE)
    for pk in live.filter(broker_orderid__isnull=True).values_list("pk", flat=True):
        order_refresh(order_id=pk, now=now)  # nothing to poll: settled from the orderbook instead
    due = live.filter(broker_orderid__isnull=False).filter(Q(poll_after__isnull=True) | Q(poll_after__lte=now))
    n = 0
    for pk in due.order_by(F("polled_at").asc(nulls_first=True), "pk").values_list("pk", flat=True)[:limit]:
        order_refresh(order_id=pk, now=now)
        n += 1
    return n


def orders_poll_fan_out() -> int:
    """One poll task per account with open orders, so accounts are polled in parallel."""
    ids = set(Order.objects.filter(status__in=LIVE).values_list("account_id", flat=True))
    for account_id in ids:
        enqueue.poll_account(account_id)
    return len(ids)
