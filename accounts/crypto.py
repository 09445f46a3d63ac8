"""API keys at rest: MultiFernet over settings.ENCRYPTION_KEYS (newest first).

Plaintext keys exist only in memory, for the duration of a broker call.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings
from django.utils.crypto import salted_hmac


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


# ---------------------------------------------------------------- one broker account, once
# Loopback names for one machine: "localhost:5000" and "127.0.0.1:5000" are the same OpenAlgo.
_ANY = "0.0.0.0"  # nosec B104 # a name to compare a host with, never an address bound to
_LOOPBACK = {"localhost", "127.0.0.1", "::1", _ANY}
_DEFAULT_PORTS = {"http": 80, "https": 443}


def normalised_host(url: str) -> str:
    """The OpenAlgo server `url` names, however it is written: host lower-cased, loopback names
    as one, the scheme's default port and trailing slashes dropped. The scheme itself is left
    out: http:// and https:// of one host reach the same server."""
    parts = urlsplit(url.strip())
    host = (parts.hostname or "").lower()
    host = "127.0.0.1" if host in _LOOPBACK else host
    try:
        port = parts.port
    except ValueError:
        port = None
    if port is not None and port != _DEFAULT_PORTS.get(parts.scheme.lower()):
        host = f"{host}:{port}"
    return host + parts.path.rstrip("/")


def account_fingerprint(host_url: str, api_key: str) -> str:
    """A keyed digest of (server, key), so the same broker account can be recognised without
    storing or comparing the key: HMAC-SHA256 under a secret derived from SECRET_KEY. Changing
    SECRET_KEY changes every fingerprint (run `manage.py account_fingerprints` afterwards)."""
    message = f"{normalised_host(host_url)}\0{api_key.strip()}"
    return salted_hmac(FINGERPRINT_SALT, message, algorithm="sha256").hexdigest()


FINGERPRINT_SALT = "algomirror.accounts.broker-account-fingerprint.v1"
