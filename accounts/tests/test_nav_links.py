"""Links in the side bar: external tools open in a new tab; the mailbox shows while mail stays local."""

from __future__ import annotations

import re

import pytest

from .factories import UserFactory


@pytest.mark.django_db
def test_flower_opens_in_a_new_tab(client, settings):
    settings.FLOWER_URL = "http://127.0.0.1:5555"
    client.force_login(UserFactory(username="boss", admin=True))
    body = client.get("/").content.decode()
    link = re.search(r'<a [^>]*href="http://127.0.0.1:5555"[^>]*>', body).group(0)
    assert 'target="_blank"' in link and 'rel="noopener"' in link


@pytest.mark.django_db
def test_mailbox_link_only_while_mail_is_kept_locally(client, settings):
    client.force_login(UserFactory(username="boss", admin=True))
    settings.EMAIL_BACKEND = "accounts.mailbox.MailboxBackend"
    assert 'href="/mailbox/"' in client.get("/").content.decode()
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    assert 'href="/mailbox/"' not in client.get("/").content.decode()
