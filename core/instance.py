"""The embedded default's instance directory and its generated secrets.

Django-free, imported by settings. In production (ALGOMIRROR_MODE=production) nothing is
generated: SECRET_KEY and ENCRYPTION_KEY must come from the environment, or start-up fails.
The embedded default generates both once into `<instance>/secrets.env` (mode 0600), so the
stored API-key ciphertexts stay readable across restarts — the original generated a fresh key
per process, which made every stored key unreadable after a restart.
"""

from __future__ import annotations

import base64
import os
import secrets
from pathlib import Path

SECRETS_FILE = "secrets.env"


def read_env_file(path: Path) -> dict[str, str]:
    out: dict[str, str] = {}
    if not path.exists():
        return out
    for line in path.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#") and "=" in line:
            k, v = line.split("=", 1)
            out[k.strip()] = v.strip()
    return out


def new_fernet_key() -> str:
    return base64.urlsafe_b64encode(secrets.token_bytes(32)).decode()


def ensure_secrets(instance_dir: Path) -> dict[str, str]:
    """Create the instance secrets file once (atomically, 0600) and return its values."""
    instance_dir.mkdir(parents=True, exist_ok=True)
    path = instance_dir / SECRETS_FILE
    if not path.exists():
        body = (
            "# Generated once by AlgoMirror's embedded default. Keep it private and backed up:\n"
            "# without ENCRYPTION_KEY the stored OpenAlgo API keys cannot be decrypted.\n"
            f"SECRET_KEY={secrets.token_urlsafe(50)}\n"
            f"ENCRYPTION_KEY={new_fernet_key()}\n"
        )
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            pass  # another process won the race; read its file
        else:
            with os.fdopen(fd, "w") as fh:
                fh.write(body)
    os.chmod(path, 0o600)
    return read_env_file(path)


def write_secret(instance_dir: Path, key: str, value: str) -> None:
    """Replace one value in the secrets file, atomically and keeping mode 0600."""
    path = instance_dir / SECRETS_FILE
    lines = path.read_text().splitlines() if path.exists() else []
    out = [ln for ln in lines if not ln.startswith(f"{key}=")] + [f"{key}={value}"]
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write("\n".join(out) + "\n")
    os.replace(tmp, path)
