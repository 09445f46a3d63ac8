"""The messages that turn the broker's subscriptions into exactly what is wanted (pure).

A key whose mode changes is unsubscribed in its old mode and subscribed in the new one;
subscribes go out at most 500 instruments per message.
"""

from __future__ import annotations

from openalgo_client import protocol

SUBSCRIBE_CHUNK = 500


def subscription_messages(want: dict[str, int], have: dict[str, int]) -> list[str]:
    """`want` and `have` map "EXCHANGE:SYMBOL" to a mode; unsubscribes first, then subscribes."""
    out: list[str] = []
    gone: dict[int, list[str]] = {}
    for key, mode in have.items():
        if want.get(key) != mode:
            gone.setdefault(mode, []).append(key)
    for mode, keys in gone.items():
        out.append(protocol.unsubscribe(keys, mode))
    new: dict[int, list[str]] = {}
    for key, mode in want.items():
        if have.get(key) != mode:
            new.setdefault(mode, []).append(key)
    for mode, keys in new.items():
        out += [protocol.subscribe(keys[i : i + SUBSCRIBE_CHUNK], mode) for i in range(0, len(keys), SUBSCRIBE_CHUNK)]
    return out
