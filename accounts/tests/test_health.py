"""Account health: ping + funds, three strikes → down, market-data failover, the beat cadence."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
import time

import pytest

from accounts import services
from accounts.models import AuditEvent, TradingAccount
from brokersim.testing import ROOT
from core.testing import database_url, wait_for

from .factories import account_on

IST = dt.timezone(dt.timedelta(hours=5, minutes=30))


def stop_instance(paper, target):
    other = next(b for b in paper if b is not target)
    other.sim("POST", "instance", {"name": target.info["name"], "action": "stop"})


def start_instance(paper, target):
    other = next(b for b in paper if b is not target)
    other.sim("POST", "instance", {"name": target.info["name"], "action": "start"})


@pytest.mark.django_db
def test_check_records_status_latency_broker_and_funds(alice, paper_clean):
    sim = paper_clean[1]  # live profile: funds arrive as strings
    a = services.account_check(account_id=account_on(sim, owner=alice).pk)
    assert a.status == "connected" and a.latency_ms is not None and a.broker == sim.info["broker"]
    cash = float(sim.ok("funds")["data"]["availablecash"])
    assert float(a.funds["available_cash"]) == cash
    assert AuditEvent.objects.filter(action="connection_changed", account=a, message__contains="connected").exists()


@pytest.mark.django_db
def test_three_failures_in_a_row_mark_an_account_down(alice, paper_clean):
    sim = paper_clean[2]
    a = account_on(sim, owner=alice)
    services.account_check(account_id=a.pk)
    stop_instance(paper_clean, sim)
    try:
        statuses = [services.account_check(account_id=a.pk).status for _ in range(3)]
    finally:
        start_instance(paper_clean, sim)
    assert statuses == ["degraded", "degraded", "down"]
    assert services.account_check(account_id=a.pk).status == "connected"  # recovers on the next good check
    moves = list(AuditEvent.objects.filter(action="connection_changed", account=a).values_list("details", flat=True))
    assert [(m["from"], m["to"]) for m in reversed(moves)] == [
        ("unknown", "connected"),
        ("connected", "degraded"),
        ("degraded", "down"),
        ("down", "connected"),
    ]


@pytest.mark.django_db
def test_expired_session_is_reported_as_such(alice, paper_clean):
    sim = paper_clean[0]
    a = account_on(sim, owner=alice)
    sim.sim("POST", "session", {"expired": True})
    assert services.account_check(account_id=a.pk).status == "session_expired"


@pytest.mark.django_db
def test_primary_down_moves_market_data_to_the_healthiest_backup_and_back_on_request(client, alice, paper_clean):
    primary_sim = paper_clean[0]
    a = account_on(primary_sim, owner=alice)
    b = account_on(paper_clean[1], owner=alice)
    c = account_on(paper_clean[2], owner=alice)
    for acc in (a, b, c):
        services.account_check(account_id=acc.pk)
    TradingAccount.objects.filter(pk=b.pk).update(latency_ms=50)
    TradingAccount.objects.filter(pk=c.pk).update(latency_ms=5)  # c is the healthiest backup
    stop_instance(paper_clean, primary_sim)
    try:
        for _ in range(3):
            services.account_check(account_id=a.pk)
    finally:
        start_instance(paper_clean, primary_sim)
    roles = dict(TradingAccount.objects.values_list("name", "holds_data_role"))
    assert roles == {a.name: False, b.name: False, c.name: True}
    move = AuditEvent.objects.get(action="data_role_moved")
    assert move.details == {"from": a.name, "to": c.name, "reason": f"{a.name} is down", "automatic": True}
    services.account_check(account_id=a.pk)  # primary healthy again: the role stays until the user says so
    assert TradingAccount.objects.get(pk=c.pk).holds_data_role
    client.force_login(alice)
    client.post(f"/accounts/{a.pk}/data-role/")
    assert TradingAccount.objects.get(pk=a.pk).holds_data_role
    assert AuditEvent.objects.filter(action="data_role_moved", details__automatic=False).count() == 1


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_real_worker_and_beat_mark_a_stopped_instance_down(alice, paper_clean, celery_test_queue):
    """Celery beat + worker processes, default 30 s cadence: the account shows down within 90 s."""
    a = account_on(paper_clean[0], owner=alice)
    b = account_on(paper_clean[1], owner=alice)
    env = dict(os.environ, DATABASE_URL=database_url(), CELERY_QUEUE=celery_test_queue, MARKET_CALENDAR="always_open")
    worker = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "algomirror",
            "worker",
            "-B",
            "--loglevel=WARNING",
            "--concurrency=2",
            "-Q",
            celery_test_queue,
            "--hostname",
            f"health-{os.getpid()}@%h",
            "--schedule",
            str(ROOT / "var" / "test-instance" / "beat-schedule"),
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    try:
        wait_for(lambda: TradingAccount.objects.get(pk=a.pk).status == "connected", 60, step=0.5)
        assert TradingAccount.objects.get(pk=a.pk).status == "connected"
        stop_instance(paper_clean, paper_clean[0])
        stopped_at = time.monotonic()
        wait_for(lambda: TradingAccount.objects.get(pk=a.pk).status == "down", 95, step=1)
        took = time.monotonic() - stopped_at
        assert TradingAccount.objects.get(pk=a.pk).status == "down", worker.stderr
        assert took <= 90, took
        assert TradingAccount.objects.get(pk=b.pk).holds_data_role  # failover happened in the worker
        assert AuditEvent.objects.filter(action="data_role_moved", details__automatic=True).exists()
    finally:
        start_instance(paper_clean, paper_clean[0])
        os.killpg(worker.pid, 15)
        worker.wait(30)
