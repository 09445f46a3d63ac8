"""Helpers for tests: waiting on a condition, and real worker or feed processes against the test database."""

from __future__ import annotations

import os
import random
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from celery import Celery
from django.conf import settings
from django.db import connection


def wait_for[T](predicate: Callable[[], T], timeout: float, step: float = 0.02) -> T:
    """Poll `predicate` every `step` seconds until it returns something truthy, for at most `timeout`
    seconds; returns that value, or the falsy value of one last call at the deadline."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(step)
    return predicate()


def database_url() -> str:
    """DATABASE_URL of the database this test process is using (the test database), for subprocesses."""
    s = connection.settings_dict
    if connection.vendor == "sqlite":
        return f"sqlite:///{s['NAME']}"
    return f"postgres://{s['USER']}@{s['HOST'] or '127.0.0.1'}:{s['PORT'] or 5432}/{s['NAME']}"


class CeleryWorker(subprocess.Popen):
    """A worker process that knows its node name, so a test can ask whether it is consuming yet."""

    def __init__(self, hostname: str, *args, **kwargs):
        self.hostname = hostname
        super().__init__(*args, **kwargs)

    def ready(self) -> bool:
        """True once the worker answers a ping: connected to the broker and consuming its queue."""
        # A client-only app on the same broker: the project's own app lives above core.
        # Not set as the current app: tasks queued by the test afterwards must still go through
        # the project app (its queue is this test run's own).
        with Celery(broker=settings.CELERY_BROKER_URL, set_as_current=False) as client:
            return bool(client.control.ping(destination=[self.hostname], timeout=0.5))


def start_celery_worker(queue: str, *args: str, concurrency: int = 4, **env: str) -> CeleryWorker:
    """A real Celery worker (threads pool, as `make run` runs it) on this test run's own queue and
    database; extra `args` (e.g. "-B" for an embedded beat) and `env` settings pass through."""
    hostname = f"test-{os.getpid()}-{random.random():.6f}@{socket.gethostname()}"
    return CeleryWorker(
        hostname,
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
            hostname,
            *args,
        ],
        cwd=Path(__file__).resolve().parents[1],
        env=dict(os.environ, DATABASE_URL=database_url(), CELERY_QUEUE=queue, MARKET_CALENDAR="always_open", **env),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
