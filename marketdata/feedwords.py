"""The feed's status and events in the words a trader uses (pure). The feed records its own terms
(states, event kinds, the lock's fencing token); the monitor page shows these sentences instead."""

from __future__ import annotations

import re

# The feed writes its status every second; this much silence means the process is gone or stuck.
SILENT_AFTER_MS = 10_000

STATES = {
    "ws": ("Streaming from {account}", "ok"),
    "rest": ("Polling prices (WebSocket down)", "warn"),
    "connecting": ("Connecting to a broker…", "warn"),
    "waiting_for_lock": ("Standing by: another feed process is streaming", "muted"),
    "no_accounts": ("No account to stream from", "down"),
}

# tone -> (badge class, badge word)
BADGES = {
    "ok": ("badge-connected", "Live"),
    "warn": ("badge-degraded", "Limited"),
    "down": ("badge-down", "Down"),
    "muted": ("badge-muted", "Standby"),
}

TITLES = {
    "lock_acquired": "Took over the feed",
    "connected": "Streaming from {account}",
    "dropped": "Lost the stream from {account}",
    "connect_failed": "Could not connect to {account}",
    "rest_polling": "Polling prices (WebSocket down)",
    "no_accounts": "No account to stream from",
}

_PHRASES = [
    (re.compile(r"stall: no tick for ([\d.]+) s"), r"no price for \1 s"),
    (re.compile(r"^no WebSocket works \((.*)\); polling REST$"), r"no broker WebSocket works (\1)"),
    (re.compile(r"^reconnect after "), "reconnected after "),
    (re.compile(r"^failover after "), "switched here after "),
    (re.compile(r"^(.+ is healthy again)$"), r"switched back: \1"),
    (re.compile(r"^start$"), "at start-up"),
    (re.compile(r"readable key"), "readable API key"),
]


def headline(status: dict, *, now_ms: int) -> tuple[str, str]:
    """(what the feed is doing, tone: ok | warn | down | muted) from the status record."""
    if not status or "state" not in status:
        return "Feed not running", "down"
    updated = status.get("updated")
    if updated is not None and now_ms - updated > SILENT_AFTER_MS:
        return f"Feed not responding (last heard {round((now_ms - updated) / 1000)} s ago)", "down"
    text, tone = STATES.get(status["state"], (status["state"].replace("_", " ").capitalize(), "muted"))
    return text.format(account=status.get("account") or "a broker"), tone


def _sentence(text: str) -> str:
    text = text.strip()
    if not text:
        return ""
    text = text[0].upper() + text[1:]
    return text if text.endswith((".", "!", "?", "…")) else text + "."


def reason(kind: str, raw: str) -> str:
    if kind == "lock_acquired":  # the reason is the lock's fencing token: nothing a trader acts on
        return "This feed process now streams prices."
    for pattern, words in _PHRASES:
        raw = pattern.sub(words, raw)
    return _sentence(raw)


def event(e: dict) -> dict:
    """The event as recorded, plus `title` and `detail` in words."""
    kind = e.get("kind", "")
    title = TITLES.get(kind, kind.replace("_", " ").capitalize())
    return {
        **e,
        "title": title.format(account=e.get("account") or "a broker"),
        "detail": reason(kind, e.get("reason") or ""),
    }
