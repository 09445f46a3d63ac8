"""The local mailbox: where mail goes when no mail server is configured (the embedded default).

Password-reset and verification mails are written one file per message under EMAIL_FILE_PATH and
listed for administrators at /mailbox/, so those flows work with no SMTP at all. The files hold
reset links (secrets while valid): the directory is private to the server's user, and only the
newest KEEP mails are kept.
"""

from __future__ import annotations

import datetime as dt
import email
import email.policy
import email.utils
import logging
import os
import re
import secrets
import time
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings
from django.contrib.admin.views.decorators import staff_member_required
from django.core.mail.backends.base import BaseEmailBackend
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render

log = logging.getLogger(__name__)

BACKEND = "accounts.mailbox.MailboxBackend"
KEEP = 200
_ID = re.compile(r"^\d{19,20}-[0-9a-f]{8}$")


def in_use() -> bool:
    return settings.EMAIL_BACKEND == BACKEND


def _dir() -> Path:
    return Path(settings.EMAIL_FILE_PATH)


class MailboxBackend(BaseEmailBackend):
    def send_messages(self, email_messages) -> int:
        folder = _dir()
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        sent = 0
        for message in email_messages:
            if not message.recipients():
                continue
            name = f"{time.time_ns()}-{secrets.token_hex(4)}"
            tmp = folder / f".{name}.tmp"
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as f:
                f.write(message.message().as_bytes())
            tmp.replace(folder / f"{name}.eml")  # readers never see half a mail
            log.warning(
                "mail to %s (%s) kept in the local mailbox: no mail server is configured; "
                "an administrator reads it at /mailbox/",
                ", ".join(message.recipients()),
                message.subject,
            )
            sent += 1
        for old in sorted(folder.glob("*.eml"), reverse=True)[KEEP:]:
            old.unlink(missing_ok=True)
        return sent


@dataclass(frozen=True)
class Mail:
    id: str
    sender: str
    to: str
    subject: str
    date: dt.datetime | None
    body: str


def _read(path: Path) -> Mail:
    msg = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
    part = msg.get_body(preferencelist=("plain", "html"))
    try:
        date = email.utils.parsedate_to_datetime(msg["Date"]) if msg["Date"] else None
    except (TypeError, ValueError):
        date = None
    return Mail(
        id=path.stem,
        sender=str(msg["From"] or ""),
        to=str(msg["To"] or ""),
        subject=str(msg["Subject"] or "(no subject)"),
        date=date,
        body=part.get_content() if part is not None else "",
    )


def messages(limit: int = 50) -> list[Mail]:
    """The newest mails first."""
    folder = _dir()
    if not folder.is_dir():
        return []
    return [_read(p) for p in sorted(folder.glob("*.eml"), reverse=True)[:limit]]


def message(mail_id: str) -> Mail | None:
    path = _dir() / f"{mail_id}.eml"
    return _read(path) if _ID.match(mail_id) and path.is_file() else None


@staff_member_required
def mailbox_list(request: HttpRequest) -> HttpResponse:
    return render(
        request,
        "mailbox/list.html",
        {"mails": messages(), "in_use": in_use(), "folder": _dir(), "smtp_host": getattr(settings, "EMAIL_HOST", "")},
    )


@staff_member_required
def mailbox_detail(request: HttpRequest, mail_id: str) -> HttpResponse:
    mail = message(mail_id)
    if mail is None:
        raise Http404("No such mail (only the newest mails are kept).")
    return render(request, "mailbox/detail.html", {"mail": mail})
