"""Writing order intents (invariant I1): every order of a batch, with its unique idempotency key,
is committed before anything is sent; one send task per account is queued on commit."""

from __future__ import annotations

import hashlib
from decimal import Decimal
from typing import TYPE_CHECKING

from django.core.cache import cache
from django.db import IntegrityError, transaction

from accounts.choices import AuditAction, TradingState
from accounts.selectors import account_get_by_id
from accounts.services import account_client, account_exit_refused_semi_auto, audit_record
from openalgo_client.rest import to_decimal

from ..freeze import split_quantity
from ..models import Order, OrderBatch, Position
from ..selectors import group_id
from . import enqueue
from .common import Leg, OrderRefused, Plan, Skipped, Status, leg_text

if TYPE_CHECKING:
    from accounts.models import TradingAccount


# Exchanges whose instruments trade in single units everywhere: no /symbol read for them.
UNIT_EXCHANGES = ("NSE", "BSE")


def instrument_info(account: TradingAccount, symbol: str, exchange: str) -> dict:
    """Lot size and freeze quantity from `account`'s own broker (/symbol), cached 6 h per OpenAlgo
    server: brokers count differently (Zerodha's MCX lot is 1 contract, another broker's the
    100 units of that contract), so one account's answer never sizes another's order."""
    server = hashlib.sha256(f"{account.host_url.rstrip('/')}|{account.broker}".encode()).hexdigest()[:16]
    key = f"instrument:{server}:{exchange}:{symbol}"
    info = cache.get(key)
    if info is None:
        res = account_client(account).call("symbol", symbol=symbol, exchange=exchange)
        if not res.ok or not isinstance(res.data, dict):
            raise OrderRefused(f"{symbol} on {exchange} ({account.name}): {res.message or 'unknown instrument'}")
        info = {
            "lotsize": max(int(to_decimal(res.data.get("lotsize"), Decimal(1))), 1),
            "freeze_qty": int(to_decimal(res.data.get("freeze_qty"), Decimal(0))),
        }
        cache.set(key, info, 6 * 3600)
    return info


def _sizes(accounts: list[TradingAccount], legs: list[Leg]) -> dict[tuple[int, int], dict]:
    """Each account's lot size and freeze quantity for each leg, keyed (account pk, leg index),
    read before the transaction (network). An entry given in units must be a whole number of
    lots on every account, and mean the same size on each: where the accounts' lot sizes differ
    (MCX on Zerodha and on another broker), units are refused and lots asked for instead. An
    exit is sized from the account's own position, in that account's units, and never refused
    for its size here."""
    unit = {"lotsize": 1, "freeze_qty": 0}
    sizes = {
        (a.pk, i): unit if leg.exchange in UNIT_EXCHANGES else instrument_info(a, leg.symbol, leg.exchange)
        for a in accounts
        for i, leg in enumerate(legs)
    }
    for i, leg in enumerate(legs):
        if leg.lots or leg.reduce_only:
            continue
        lots = {a.name: sizes[(a.pk, i)]["lotsize"] for a in accounts}
        if len(set(lots.values())) > 1:
            each = ", ".join(f"{name}: {lot}" for name, lot in lots.items())
            raise OrderRefused(
                f"{leg.symbol} on {leg.exchange}: the lot size differs between the accounts ({each}), so "
                f"{leg.quantity} units would be a different size on each: give the quantity in lots"
            )
        for name, lot in lots.items():
            if leg.quantity % lot:
                raise OrderRefused(
                    f"{leg.symbol} on {leg.exchange}: {leg.quantity} is not a whole number of lots on {name} "
                    f"(lot size {lot}): give a multiple of {lot}, or the quantity in lots"
                )
    return sizes


def _validate(accounts: list[TradingAccount], legs: list[Leg], *, skip_entries: bool = False) -> Plan:
    """What refuses a request before anything is read from a broker or written, and where each
    leg goes as an exit.

    On an account that is not active (reducing only, or halted) only exits go: a leg whose side
    reduces the position we hold there (same instrument and product) is written reduce-only, so
    the send-time gate trims it to what the broker holds and it never flips; a partial exit
    included. A leg that would open or increase a position there refuses the whole request with a
    sentence naming the account or, with `skip_entries`, leaves that account out (all its legs: a
    mirrored order is not sent in part) and lists it with why."""
    if not accounts or not legs:
        raise OrderRefused("choose at least one account and one leg")
    for leg in legs:
        sized = (leg.quantity > 0) != (leg.lots > 0) and min(leg.quantity, leg.lots) >= 0
        if leg.action not in ("BUY", "SELL") or not sized:
            raise OrderRefused(f"invalid leg {leg}: give a positive quantity or a positive number of lots")
    held = _held([a for a in accounts if a.trading_state != TradingState.ACTIVE], legs)
    kept, exits, skipped = [], set(), []
    for a in accounts:
        if not a.is_active:
            raise OrderRefused(f"{a.name} is inactive")
        mine = {i for i, leg in enumerate(legs) if leg.reduce_only}
        if a.trading_state != TradingState.ACTIVE:
            mine |= {i for i, leg in enumerate(legs) if _reduces(leg, held.get((a.pk, *_key(leg)), 0))}
            entries = [leg for i, leg in enumerate(legs) if i not in mine]
            if entries:
                state = a.get_trading_state_display().lower()
                why = f" ({a.halt_reason})" if a.halt_reason else ""
                what = ", ".join(leg_text(e.action, e.quantity, e.symbol, lots=e.lots) for e in entries)
                if skip_entries:
                    text = f"{state}{why}: {what} would open or increase a position, and only exits go there"
                    skipped.append(Skipped(a.pk, a.name, text))
                    continue
                raise OrderRefused(
                    f"{a.name} is {state}: only exits are allowed{why}, and {what} would open or increase a "
                    "position there. Untick it, or skip halted/reducing accounts for entries."
                )
        exits_here = [legs[i] for i in sorted(mine)]
        if a.is_semi_auto and exits_here:
            # OpenAlgo would queue the exit for a human and refuses cancel and close: nothing here
            # could see it through, so it is refused now, loudly, rather than left waiting.
            what = ", ".join(f"{leg.action} {leg.quantity or f'{leg.lots} lots'} {leg.symbol}" for leg in exits_here)
            account_exit_refused_semi_auto(account=a, what=what)
            raise OrderRefused(
                f"{a.name} is in semi-auto mode at OpenAlgo (orders wait for approval in its Action Center): "
                f"an exit cannot be guaranteed from here, so it was not sent ({what}). Close it in OpenAlgo's "
                "Action Center or switch the key to auto mode."
            )
        kept.append(a)
        exits |= {(a.pk, i) for i in mine}
    if not kept:
        each = "; ".join(f"{s.account}: {s.why}" for s in skipped)
        raise OrderRefused(f"nothing to send: every account was skipped ({each})")
    return Plan(kept, frozenset(exits), tuple(skipped))


def _key(leg: Leg) -> tuple[str, str, str]:
    return (leg.exchange, leg.symbol, leg.product)


def _held(accounts: list[TradingAccount], legs: list[Leg]) -> dict[tuple, int]:
    """Our positions (from our fills) in the legs' instruments on `accounts`, keyed (account pk,
    exchange, symbol, product): what a leg on a non-active account may reduce."""
    if not accounts:
        return {}
    rows = Position.objects.filter(
        account__in=accounts, symbol__in={leg.symbol for leg in legs}, exchange__in={leg.exchange for leg in legs}
    ).exclude(quantity=0)
    return {(p.account_id, p.exchange, p.symbol, p.product): p.quantity for p in rows}


def _reduces(leg: Leg, held: int) -> bool:
    """Whether the leg's side closes part of `held` (a SELL on a long, a BUY on a short)."""
    return (held > 0 and leg.action == "SELL") or (held < 0 and leg.action == "BUY")


def orders_check(*, accounts: list[TradingAccount], legs: list[Leg], skip_entries: bool = False) -> Plan:
    """Everything `orders_create` would refuse, checked without writing: the accounts the order
    goes to, those skipped with why, which legs go as exits, and each account's quantity for each
    leg (keyed (account pk, leg index)), in that account's own units — what a confirmation shows
    before anything is sent."""
    plan = _validate(accounts, legs, skip_entries=skip_entries)
    sizes = _sizes(plan.accounts, legs)
    quantities = {
        (a.pk, i): leg.quantity_for(sizes[(a.pk, i)]["lotsize"]) for a in plan.accounts for i, leg in enumerate(legs)
    }
    return Plan(plan.accounts, plan.exits, plan.skipped, quantities)


TOKEN_MAX = OrderBatch._meta.get_field("client_token").max_length


def orders_create(
    *,
    user,
    accounts: list[TradingAccount],
    legs: list[Leg],
    kind: str = OrderBatch.Kind.MANUAL,
    note: str = "",
    client_token: str = "",
    skip_entries: bool = False,
) -> OrderBatch:
    """Write one batch: an order per account and leg (split above the freeze quantity), all
    committed before anything is sent; one send task per account is queued on commit.

    `client_token` makes the request idempotent as a whole. Each order's idempotency key
    includes its batch, so it stops an order being sent twice but not a second batch for the
    same intent; the token does. A non-empty token is unique per `user`: the first call makes
    the batch, and any later call with the same user and token returns that batch, writes nothing
    and queues nothing (even if the account has been halted since: a repeat is not a new request).
    Two concurrent calls make one batch: the second waits on the database's unique index and then
    returns the first's. The returned batch's `repeat` says whether it was already there.

    Who passes what: a form carries a one-time token per render (a double click or a resubmitted
    page repeats it); a risk trigger passes its own stable key for "this exit of this run", so
    re-firing (a retry, two workers, a second evaluation of the same breach) never makes a second
    exit. Up to 64 characters. With `user=None` the database cannot enforce the token (NULLs are
    distinct), so a caller without a user must not rely on it under concurrency.

    On a halted or reducing account a leg that reduces our position there goes as an exit
    (reduce-only); one that would open or increase a position refuses the request, or with
    `skip_entries` leaves that account out, listed in the batch's `skipped` (see `_validate`).
    """
    if len(client_token) > TOKEN_MAX:
        raise OrderRefused(f"client token longer than {TOKEN_MAX} characters")
    if client_token:
        existing = batch_for_token(user, client_token)
        if existing is not None:
            return existing
    plan = _validate(accounts, legs, skip_entries=skip_entries)
    sizes = _sizes(plan.accounts, legs)
    try:
        batch = _batch_write(user, plan, legs, sizes, kind=kind, note=note, client_token=client_token)
    except IntegrityError:
        # Another request with this token committed its batch after our read above: ours rolled
        # back whole (no order of it was written), theirs is the answer.
        existing = batch_for_token(user, client_token) if client_token else None
        if existing is None:
            raise
        return existing
    batch.repeat = False
    return batch


def batch_for_token(user, client_token: str) -> OrderBatch | None:
    """The batch `user` already made with `client_token` (marked `repeat`), or None."""
    batch = OrderBatch.objects.filter(user=user, client_token=client_token).first()
    if batch is not None:
        batch.repeat = True
    return batch


def _batch_write(user, plan: Plan, legs, sizes, *, kind: str, note: str, client_token: str) -> OrderBatch:
    accounts = plan.accounts
    with transaction.atomic():
        batch = OrderBatch.objects.create(
            user=user,
            kind=kind,
            note=note[:200],
            client_token=client_token,
            skipped=[s.as_json() for s in plan.skipped],
        )
        # BUY legs before SELL legs: hedges first, so a short is never naked in between.
        ordered = sorted(enumerate(legs), key=lambda il: il[1].action != "BUY")
        plain: list[Order] = []  # one INSERT for every unsplit order of the batch
        for a in accounts:
            for i, leg in ordered:
                info = sizes[(a.pk, i)]
                quantity = leg.quantity_for(info["lotsize"])  # this account's own lots
                parts = split_quantity(quantity, info["lotsize"], info["freeze_qty"])
                common = {
                    "batch": batch,
                    "account": a,
                    "symbol": leg.symbol,
                    "exchange": leg.exchange,
                    "action": leg.action,
                    "pricetype": leg.pricetype,
                    "product": leg.product,
                    "price": leg.price,
                    "trigger_price": leg.trigger_price,
                    "reduce_only": leg.reduce_only or (a.pk, i) in plan.exits,
                }
                key = f"b{batch.pk}:a{a.pk}:l{i}:g0"
                if len(parts) == 1:
                    plain.append(Order(idempotency_key=key, quantity=quantity, **common))
                    continue
                # Above the freeze quantity: a parent that is never sent, and children that are.
                parent = Order.objects.create(idempotency_key=key, quantity=quantity, status=Status.SPLIT, **common)
                Order.objects.bulk_create(
                    [
                        Order(idempotency_key=f"{key}:c{n}", quantity=q, parent=parent, **common)
                        for n, q in enumerate(parts)
                    ]
                )
        Order.objects.bulk_create(plain)
        _audit_batch(user, batch, plan, legs, sizes)
        for a in accounts:
            enqueue.send_on_commit(a.pk, batch.pk)
    return batch


def _audit_batch(user, batch: OrderBatch, plan: Plan, legs: list[Leg], sizes: dict) -> None:
    """One row per account the batch went to (what it was sent, as exit or entry) and one per
    account skipped (why), each naming the batch (M-<n>), who asked and every account of it."""
    group = group_id(batch.pk)
    names = [a.name for a in plan.accounts]
    common = {"batch": batch.pk, "kind": batch.kind, "note": batch.note, "accounts": names}
    if user is None:
        common["by"] = "system"
    for a in plan.accounts:
        mine = []
        for i, leg in enumerate(legs):
            exit_ = leg.reduce_only or (a.pk, i) in plan.exits
            quantity = leg.quantity_for(sizes[(a.pk, i)]["lotsize"])
            text = leg_text(leg.action, quantity, leg.symbol, leg.exchange) + f" {leg.pricetype} {leg.product}"
            if leg.price:
                text += f" @ {leg.price}"
            mine.append(text + (" (exit, reduce-only)" if exit_ else ""))
        others = f" (with {len(names) - 1} other account(s))" if len(names) > 1 else ""
        audit_record(
            action=AuditAction.ORDER_PLACED,
            user=user,
            account=a,
            group=group,
            message=f"{group}: {'; '.join(mine)}{others}"[:300],
            details=common | {"legs": mine},
        )
    for s in plan.skipped:
        audit_record(
            action=AuditAction.ORDER_SKIPPED,
            user=user,
            account=account_get_by_id(pk=s.account_id),
            group=group,
            message=f"{group}: not sent to {s.account}: {s.why}"[:300],
            details=common | {"why": s.why},
        )
