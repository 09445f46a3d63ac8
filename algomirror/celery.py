"""The Celery app and the fixed beat schedule.

Schedules are defined here, in code; django-celery-beat's DatabaseScheduler syncs them into
its tables at start-up, where operators can pause one at run time. Run exactly one beat.
"""

from __future__ import annotations

import os

from celery import Celery
from celery.signals import task_prerun, worker_init, worker_ready

from trading import generation

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "algomirror.settings")

app = Celery("algomirror")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

app.conf.beat_schedule = {
    # Every 30 s; the task itself stretches to every 5 min outside market hours.
    "accounts-health": {
        "task": "marketdata.tasks.accounts_check_due",
        "schedule": float(os.environ.get("HEALTH_BEAT_SECONDS", "30")),
        "options": {"expires": 25},
    },
    # Order status for open orders only: one request per account per second, accounts in parallel.
    "orders-poll": {"task": "trading.tasks.orders_poll_task", "schedule": 2.0, "options": {"expires": 2}},
    # Orders left "sending" by a dead worker, or unknown ones whose reconcile task was lost.
    "orders-sweep": {"task": "trading.tasks.orders_sweep_task", "schedule": 10.0, "options": {"expires": 9}},
    # Our positions against each broker's positionbook; trades and holdings copied for the books.
    "books-reconcile": {
        "task": "trading.tasks.books_refresh_task",
        "schedule": float(os.environ.get("RECONCILE_SECONDS", "60")),
        "options": {"expires": 30},
    },
}


@worker_init.connect
def _keys_readable_on_start(**kwargs) -> None:
    """A worker whose encryption keys cannot read the stored data must not start (it would find
    every key unreadable); SystemExit passes through Celery's signal dispatch and stops it."""
    import django
    from django.core.exceptions import ImproperlyConfigured

    django.setup()
    from accounts.keycheck import require_readable_keys

    try:
        require_readable_keys()
    except ImproperlyConfigured as e:
        raise SystemExit(str(e)) from None


@worker_ready.connect
def _reconcile_on_start(sender=None, **kwargs) -> None:
    """I8: reconcile every account as soon as a worker is up, not a cycle later. Several workers
    starting together reconcile more than once, which is harmless (reads only).

    A new generation begins first: reads made before this start no longer let entries through,
    however recent (the reconcile sent here, or an entry's own read, is of the new generation)."""
    generation.advance()
    sender.app.send_task("trading.tasks.books_refresh_task")


@task_prerun.connect
def _db_like_a_request(**kwargs) -> None:
    """Treat each task like a web request: drop a connection that is broken or past CONN_MAX_AGE,
    keep a healthy one. (Celery's own default closes every connection around every task; a new
    PostgreSQL connection per order send cost more than the send itself — see settings.)"""
    from django.db import close_old_connections

    close_old_connections()
