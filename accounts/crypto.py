"""API keys at rest: MultiFernet over settings.ENCRYPTION_KEYS (newest first).

Plaintext keys exist only in memory, for the duration of a broker call.
"""

from __future__ import annotations

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings


class KeyUnreadable(Exception):
    """The stored ciphertext does not decrypt under any configured key (tampered, or a lost key)."""


def _fernet() -> MultiFernet:
    return MultiFernet([Fernet(k.encode()) for k in settings.ENCRYPTION_KEYS])


def encrypt(plaintext: str) -> str:
    return _fernet().encrypt(plaintext.encode()).decode()


def decrypt(token: str) -> str:
    try:
        return _fernet().decrypt(token.encode()).decode()
    except (InvalidToken, ValueError, TypeError) as e:
        raise KeyUnreadable from e


def rotate(token: str) -> str:
    """Re-encrypt under the newest key (raises KeyUnreadable if no key opens it)."""
    try:
        return _fernet().rotate(token.encode()).decode()
    except (InvalidToken, ValueError, TypeError) as e:
        raise KeyUnreadable from e
