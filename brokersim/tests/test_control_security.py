"""brokersim's own doors (issue 11, finding 10): the accounts file holds every paper account's API
key, so it is private to its user (0600); the /_sim control API (reset, faults, prices, stop) is
open only on loopback: listening on any other address needs a control token, and then every
/_sim request must carry it. OpenAlgo's /api/v1 is unchanged (the API key guards it)."""

from __future__ import annotations

import os
import stat
import subprocess
import sys

import httpx

from brokersim.testing import ROOT, Broker, start_brokersim, stop

TOKEN = "t0k-" + "9" * 32


def test_accounts_file_is_private_to_its_user(tmp_path):
    os.umask(0o022)  # the usual umask: a plain open() would leave the file world-readable
    proc, _ = start_brokersim(tmp_path, accounts=1)
    try:
        [path] = tmp_path.glob("accounts-*.json")
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
    finally:
        stop(proc)


def test_non_loopback_address_without_a_token_refuses_to_start(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "BROKERSIM_CONTROL_TOKEN"}
    done = subprocess.run(
        [sys.executable, "-m", "brokersim", "--accounts", "1", "--base-port", "0", "--host", "0.0.0.0"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )
    assert done.returncode == 2
    assert "--control-token" in done.stderr and "BROKERSIM_CONTROL_TOKEN" in done.stderr
    assert "unrecognized arguments" not in done.stderr


def test_non_loopback_address_needs_the_token_on_every_control_call(tmp_path):
    proc, [info] = start_brokersim(tmp_path, "--host", "0.0.0.0", "--control-token", TOKEN, accounts=1)
    try:
        assert info["host"].startswith("http://127.0.0.1:")  # a wildcard address is reached on loopback here
        host = info["host"]
        for method, path in (("GET", "status"), ("POST", "reset"), ("GET", "ledger"), ("DELETE", "fault")):
            r = httpx.request(method, f"{host}/_sim/{path}", json={})
            assert r.status_code == 403, (path, r.text)
            wrong = httpx.request(method, f"{host}/_sim/{path}", json={}, headers={"X-Sim-Token": TOKEN + "x"})
            assert wrong.status_code == 403, path
        assert Broker(info, token=TOKEN).sim("GET", "status")["status"] == "success"
        bearer = httpx.get(f"{host}/_sim/status", headers={"Authorization": f"Bearer {TOKEN}"})
        assert bearer.status_code == 200
        # OpenAlgo's own API is untouched: its API key is what guards it.
        funds = httpx.post(f"{host}/api/v1/funds", json={"apikey": info["api_key"]}).json()
        assert funds["status"] == "success"
    finally:
        stop(proc)


def test_the_token_can_come_from_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("BROKERSIM_CONTROL_TOKEN", TOKEN)
    proc, [info] = start_brokersim(tmp_path, "--host", "0.0.0.0", accounts=1)
    try:
        assert httpx.get(f"{info['host']}/_sim/status").status_code == 403
        assert Broker(info, token=TOKEN).sim("GET", "status")["status"] == "success"
    finally:
        stop(proc)


def test_loopback_control_api_stays_open_without_a_token(tmp_path):
    """The default (what `make run` and the tests use): bound to 127.0.0.1 only."""
    proc, [info] = start_brokersim(tmp_path, accounts=1)
    try:
        assert httpx.get(f"{info['host']}/_sim/status").status_code == 200
    finally:
        stop(proc)
