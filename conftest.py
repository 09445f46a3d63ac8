"""Shared fixtures: personas, a real brokersim, and isolation of Redis-backed state."""

from __future__ import annotations

import os

import pytest

from brokersim.testing import Broker, start_brokersim, stop

try:
    from accounts.tests.factories import UserFactory
except ImportError:  # brokersim-only environments
    UserFactory = None


@pytest.fixture(scope="session", autouse=True)
def celery_test_queue():
    """Tasks sent by services during tests go to a queue of this run's own; nothing consumes it
    unless a test starts a real worker on it. Purged at the end."""
    try:
        from algomirror.celery import app
    except ImportError:  # brokersim-only environments
        yield None
        return
    queue = f"test-{os.getpid()}"
    app.conf.task_default_queue = queue
    yield queue
    with app.connection_for_write() as conn:
        conn.default_channel.queue_purge(queue)


@pytest.fixture(autouse=True)
def _clean_cache(request):
    """allauth's login throttling lives in the (Redis) cache: start every Django test clean."""
    if "django_db_setup" not in request.fixturenames and not request.node.get_closest_marker("django_db"):
        yield
        return
    from django.core.cache import cache

    cache.clear()
    yield


@pytest.fixture(scope="session")
def paper(tmp_path_factory):
    """A brokersim process with 4 paper accounts, shared by the Django tests."""
    proc, accounts = start_brokersim(tmp_path_factory.mktemp("paper"), accounts=4, seed=3)
    yield [Broker(a) for a in accounts]
    stop(proc)


@pytest.fixture
def paper_clean(paper):
    for b in paper:
        b.sim("POST", "reset", {"market": True})
        b.sim("DELETE", "fault")
    return paper


@pytest.fixture
def alice(db):
    return UserFactory(username="alice", password="correct-horse-battery-9")


@pytest.fixture
def charlie(db):
    return UserFactory(username="charlie", password="another-horse-battery-7")
