"""API keys at rest: MultiFernet over settings.ENCRYPTION_KEYS (newest first).

Plaintext keys exist only in memory, for the duration of a broker call.
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path
from urllib.parse import urlsplit

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings
from django.utils.crypto import salted_hmac

from core.keys import BadKeyList, parse_fernet_keys, read_key_file

log = logging.getLogger(__name__)


class KeyUnreadable(Exception):
    """The stored ciphertext does not decrypt under any configured key (tampered, or a lost key)."""


class KeyListStale(KeyUnreadable):
    """This process's key list cannot read what the installation stores (the canary): the process
    predates a rotation or was started with the wrong ENCRYPTION_KEY. Nothing is sent, and no
    account is blamed for it: restarting the process with the current key list cures it."""


# The key file's keys as this process last read them: a file that says the same again changes
# nothing, so a key list set another way (a test, the rotation command) is not undone by it.
_file_keys_seen: list[str] = list(settings.ENCRYPTION_KEYS)
_reload_lock = threading.Lock()


def _fernet() -> MultiFernet:
    return MultiFernet([Fernet(k.encode()) for k in settings.ENCRYPTION_KEYS])


def reload_keys() -> bool:
    """Read the key file again (when there is one); adopt its list if it changed since last read.
    True when the list changed. A file that does not parse is ignored (and logged): the list in
    use stays, so a half-written edit never takes the keys away from a running process."""
    global _file_keys_seen
    path = getattr(settings, "ENCRYPTION_KEY_FILE", None)
    if path is None:
        return False
    with _reload_lock:
        try:
            keys = parse_fernet_keys(read_key_file(Path(path)), source=f"ENCRYPTION_KEY in {path}")
        except (OSError, BadKeyList) as e:
            log.error("encryption keys: %s; keeping the keys in use", e)
            return False
        if keys == _file_keys_seen:
            return False
        _file_keys_seen = keys
        if keys == list(settings.ENCRYPTION_KEYS):
            return False
        settings.ENCRYPTION_KEYS = keys
        log.warning("encryption keys: the key file changed; now using %d key(s)", len(keys))
        return True


def encrypt(plaintext: str) -> str:
    reload_keys()  # never encrypt under a key the file has already dropped or superseded
    return _fernet().encrypt(plaintext.encode()).decode()


def decrypt(token: str) -> str:
    try:
        return _decrypt(token)
    except KeyUnreadable:
        if not reload_keys():
            raise
    return _decrypt(token)


def _decrypt(token: str) -> str:
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


def decrypts_under_newest(token: str) -> bool:
    """Whether `token` is already under the newest key (what rotation checks before dropping one)."""
    try:
        Fernet(settings.ENCRYPTION_KEYS[0].encode()).decrypt(token.encode())
    except (InvalidToken, ValueError, TypeError):
        return False
    return True


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
