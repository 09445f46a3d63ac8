"""Writes and broker access for market data: interest registration, the feed's accounts, the
trading calendar's edits."""

from __future__ import annotations

import functools
import re

from django.db import transaction

from accounts import crypto
from accounts.selectors import account_list_feed_candidates
from accounts.services import account_client, account_socket
from openalgo_client import protocol

from . import selectors, store
from .models import MarketHoliday, SpecialTradingSession
from .stream import FeedAccount

KEY_RE = re.compile(
    r"^(NSE|NFO|CDS|BSE|BFO|BCD|MCX|NCDEX|NCO|NSE_INDEX|BSE_INDEX|MCX_INDEX|GLOBAL_INDEX|CRYPTO)"
    r":[A-Z0-9&\-_.]{1,40}$"
)
MAX_KEYS_PER_OWNER = 200


def valid_key(key: str) -> bool:
    return bool(KEY_RE.match(key))


def interest_register(*, owner: str, keys: dict[str, int], ttl: float | None = None) -> None:
    """What a part of the platform wants streamed (positions, a chain page…). The feed follows
    the union within a second. Invalid keys are refused, not silently dropped."""
    bad = [k for k in keys if not valid_key(k)]
    if bad:
        raise ValueError(f"not an EXCHANGE:SYMBOL key: {', '.join(bad[:5])}")
    if len(keys) > MAX_KEYS_PER_OWNER:
        raise ValueError(f"at most {MAX_KEYS_PER_OWNER} instruments per subscriber")
    if any(m not in (protocol.LTP, protocol.QUOTE, protocol.DEPTH) for m in keys.values()):
        raise ValueError("mode must be 1 (LTP), 2 (Quote) or 3 (Depth)")
    store.interest_set(owner, keys, ttl=ttl)


def feed_accounts() -> list[FeedAccount]:
    """Accounts the feed may use, the preferred (market-data role of the first owner) first."""
    out = []
    preferred_taken = False
    for a in account_list_feed_candidates():
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
