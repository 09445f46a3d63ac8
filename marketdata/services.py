"""Writes and broker access for market data: interest registration, the feed's accounts, the
trading calendar's edits."""

from __future__ import annotations

import functools
import logging
import re
from dataclasses import dataclass

from django.conf import settings
from django.db import transaction

from accounts import crypto
from accounts.choices import AlertKind
from accounts.selectors import account_list_feed_candidates
from accounts.services import account_client, account_socket, alert_raise
from openalgo_client import protocol

from . import selectors, store
from .models import MarketHoliday, SpecialTradingSession
from .stream import FeedAccount

KEY_RE = re.compile(
    r"^(NSE|NFO|CDS|BSE|BFO|BCD|MCX|NCDEX|NCO|NSE_INDEX|BSE_INDEX|MCX_INDEX|GLOBAL_INDEX|CRYPTO)"
    r":[A-Z0-9&\-_.]{1,40}$"
)
MAX_KEYS_PER_OWNER = 200
MODES = (protocol.LTP, protocol.QUOTE, protocol.DEPTH)
log = logging.getLogger(__name__)


def valid_key(key: str) -> bool:
    return bool(KEY_RE.match(key))


@dataclass(frozen=True)
class InterestReport:
    kept: dict[str, int]
    dropped: dict[str, str]  # key -> why it is not streamed


def interest_clean(keys: dict[str, int]) -> InterestReport:
    """Each key on its own: a bad key or mode is dropped with its reason, the rest kept; over the
    cap, the first MAX_KEYS_PER_OWNER in key order are kept (the same ones every time, so the
    feed does not churn subscriptions) and the rest reported."""
    kept: dict[str, int] = {}
    dropped: dict[str, str] = {}
    for key in sorted(keys, key=str):
        mode = keys[key]
        if not isinstance(key, str) or not valid_key(key):
            dropped[str(key)[:80]] = "not an EXCHANGE:SYMBOL key"
        elif mode not in MODES:
            dropped[key] = "mode must be 1 (LTP), 2 (Quote) or 3 (Depth)"
        elif len(kept) >= MAX_KEYS_PER_OWNER:
            dropped[key] = f"more than {MAX_KEYS_PER_OWNER} instruments for one subscriber"
        else:
            kept[key] = mode
    return InterestReport(kept, dropped)


def interest_register(*, owner: str, keys: dict[str, int], ttl: float | None = None) -> InterestReport:
    """What a part of the platform wants streamed (positions, a chain page…). The feed follows
    the union within a second. A bad key never costs the others their prices: it is dropped,
    logged and recorded for the feed page (`InterestReport.dropped`)."""
    report = interest_clean(keys)
    if report.dropped:
        log.warning(
            "market data: %s: %d instrument(s) not streamed: %s",
            owner,
            len(report.dropped),
            "; ".join(f"{k} ({why})" for k, why in list(report.dropped.items())[:10]),
        )
    store.interest_set(owner, report.kept, ttl=ttl, dropped=report.dropped)
    return report


POSITIONS_OWNER = "positions:{user}"


def positions_interest_set(by_user: dict[int, dict[str, int]]) -> None:
    """Open positions, per user: each user's own set (and cap), so one user's bad symbol or long
    list never takes another's prices. A user whose dropped instruments changed hears it once."""
    from django.contrib.auth import get_user_model

    users = get_user_model().objects.in_bulk(list(by_user))
    for uid, keys in by_user.items():
        owner = POSITIONS_OWNER.format(user=uid)
        before = store.interest_dropped(owner)
        report = interest_register(owner=owner, keys=keys)
        new = sorted(set(report.dropped) - set(before))
        if new and uid in users:
            alert_raise(
                kind=AlertKind.PRICES_DROPPED,
                user=users[uid],
                message=f"No live price for {', '.join(new[:5])}{' …' if len(new) > 5 else ''}: "
                f"{report.dropped[new[0]]}. Other instruments stream as usual.",
                details={"dropped": {k: report.dropped[k] for k in new[:50]}},
            )
    live = {POSITIONS_OWNER.format(user=uid) for uid in by_user}
    for owner in store.interest_owners("positions"):
        if owner not in live:  # flat now, or the one shared owner of earlier versions
            store.interest_clear(owner)


def feed_accounts() -> list[FeedAccount]:
    """Accounts the feed may use, the preferred (market-data role of the first owner) first.
    Only administrators' accounts unless the administrator shares every user's
    (MARKETDATA_FEED_ACCOUNTS=all): the feed streams everyone's instruments with that account's key."""
    out = []
    preferred_taken = False
    for a in account_list_feed_candidates(admins_only=settings.MARKETDATA_FEED_ACCOUNTS != "all"):
        try:
            account_client(a)  # proves the key decrypts; an unreadable one halts the account
        except crypto.KeyUnreadable:
            continue
        preferred = a.holds_data_role and not preferred_taken
        preferred_taken |= preferred
        out.append(
            FeedAccount(
                a.pk,
                a.name,
                a.ws_url,
                a.host_url,
                socket=functools.partial(account_socket, a),
                rest=functools.partial(account_client, a),
                preferred=preferred,
                latency_ms=a.latency_ms,
            )
        )
    return out


def rest_quotes(account: FeedAccount, keys: list[str]) -> dict[str, dict]:
    """REST fallback: one `multiquotes` call for up to 50 instruments."""
    try:
        client = account.rest()
    except crypto.KeyUnreadable:
        return {}
    res = client.call("multiquotes", symbols=[protocol.split(k) for k in keys])
    out = {}
    if res.ok:
        for row in res.body.get("results", []):
            if isinstance(row, dict) and isinstance(row.get("data"), dict):
                out[f"{row.get('exchange')}:{row.get('symbol')}"] = row["data"]
    return out


# ------------------------------------------------------------------ trading calendar
def holiday_add(*, date, name: str, market: str) -> MarketHoliday:
    """Raises IntegrityError when the market already has a holiday that day (a race past the form)."""
    with transaction.atomic():
        h = MarketHoliday.objects.create(date=date, name=name, market=market)
    selectors.calendar_invalidate()
    return h


def special_add(*, date, name: str, market: str, start, end) -> SpecialTradingSession:
    """Raises IntegrityError for a duplicate name that day (a race past the form)."""
    with transaction.atomic():
        s = SpecialTradingSession.objects.create(date=date, name=name, market=market, start=start, end=end)
    selectors.calendar_invalidate()
    return s


def calendar_entry_delete(entry: MarketHoliday | SpecialTradingSession) -> None:
    entry.delete()
    selectors.calendar_invalidate()
