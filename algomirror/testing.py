"""Helpers for tests that start real worker or feed processes against the test database."""

from __future__ import annotations

from django.db import connection


def database_url() -> str:
    """DATABASE_URL of the database this test process is using (the test database), for subprocesses."""
    s = connection.settings_dict
    if connection.vendor == "sqlite":
        return f"sqlite:///{s['NAME']}"
    return f"postgres://{s['USER']}@{s['HOST'] or '127.0.0.1'}:{s['PORT'] or 5432}/{s['NAME']}"
