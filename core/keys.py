"""The encryption key list as configured: parsed strictly, so a typo stops start-up (pure).

`ENCRYPTION_KEY` (or the file `ENCRYPTION_KEY_FILE` names) holds Fernet keys, newest first,
separated by commas or new lines. An empty entry (a trailing or doubled comma) or an entry that is
not a Fernet key is refused with its position: the message never repeats the key itself.
"""

from __future__ import annotations

import base64
import binascii
import os
import re
from pathlib import Path

_SEPARATORS = re.compile(r"[,\n]")


class BadKeyList(ValueError):
    """The configured key list cannot be used; the message says where and what to do."""


def parse_fernet_keys(raw: str, *, source: str) -> list[str]:
    """Keys newest first, each checked to be url-safe base64 of 32 bytes (what Fernet needs)."""
    entries = [e.strip() for e in _SEPARATORS.split(raw.strip())]
    if entries == [""]:
        raise BadKeyList(f"{source} is empty: it needs at least one Fernet key.")
    n = len(entries)
    for i, entry in enumerate(entries, 1):
        if not entry:
            raise BadKeyList(
                f"{source}: entry {i} of {n} is empty (a trailing or doubled comma?). "
                "Write the keys newest first, separated by single commas."
            )
        try:
            ok = len(base64.urlsafe_b64decode(entry.encode("ascii"))) == 32
        except (binascii.Error, UnicodeEncodeError, ValueError):
            ok = False
        if not ok:
            raise BadKeyList(
                f"{source}: entry {i} of {n} is not a Fernet key (url-safe base64 of 32 bytes, 44 characters "
                "ending in '='). Generate one with: python -c \"from cryptography.fernet import Fernet; "
                'print(Fernet.generate_key().decode())"'
            )
    return entries


def read_key_file(path: Path) -> str:
    """The raw key list in a key file: its `ENCRYPTION_KEY=` line (the embedded secrets file), or
    else every non-comment line (a mounted secret holding only keys)."""
    lines = [ln.strip() for ln in path.read_text().splitlines()]
    lines = [ln for ln in lines if ln and not ln.startswith("#")]
    for ln in lines:
        if ln.startswith("ENCRYPTION_KEY="):
            return ln.split("=", 1)[1]
    return ",".join(ln for ln in lines if "=" not in ln.rstrip("="))


def write_key_file(path: Path, keys: list[str]) -> None:
    """Replace the key list in `path` atomically (mode 0600): its `ENCRYPTION_KEY=` line when it has
    one (the embedded secrets file keeps its other values), else the whole file, one key a line."""
    lines = path.read_text().splitlines() if path.exists() else []
    value = ",".join(keys)
    if any(ln.strip().startswith("ENCRYPTION_KEY=") for ln in lines):
        out = [f"ENCRYPTION_KEY={value}" if ln.strip().startswith("ENCRYPTION_KEY=") else ln for ln in lines]
    else:
        out = [ln for ln in lines if ln.strip().startswith("#")] + keys
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write("\n".join(out) + "\n")
    os.replace(tmp, path)
