"""Helpers for tests that start real worker or feed processes against the test database."""

from __future__ import annotations

from django.db import connection


def database_url() -> str:
    """DATABASE_URL of the database this test process is using (the test database), for subprocesses."""
    s = connection.settings_dict
    if connection.vendor == "sqlite":
        return f"sqlite:///{s['NAME']}"
    return f"postgres://{s['USER']}@{s['HOST'] or '127.0.0.1'}:{s['PORT'] or 5432}/{s['NAME']}"


def start_celery_worker(queue: str, *args: str, concurrency: int = 4, **env: str):
    """A real Celery worker (threads pool, as `make run` runs it) on this test run's own queue and
    database; extra `args` (e.g. "-B" for an embedded beat) and `env` settings pass through."""
    import os
    import random
    import subprocess
    import sys
    from pathlib import Path

    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "algomirror",
            "worker",
            "--pool=threads",
            f"--concurrency={concurrency}",
            "-Q",
            queue,
            "--loglevel=WARNING",
            "--hostname",
            f"test-{os.getpid()}-{random.random():.6f}@%h",
            *args,
        ],
        cwd=Path(__file__).resolve().parents[1],
        env=dict(os.environ, DATABASE_URL=database_url(), CELERY_QUEUE=queue, MARKET_CALENDAR="always_open", **env),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
