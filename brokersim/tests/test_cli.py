"""The command line: accounts file contract, determinism across processes, record and replay."""

from __future__ import annotations

import subprocess
import sys

import httpx

from brokersim.testing import ROOT, start_brokersim, stop

START = "2026-11-20T10:30:00+05:30"


def run_fast(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "brokersim", "--base-port", "0", "--fast", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_accounts_file_contract(tmp_path):
    proc, accounts = start_brokersim(tmp_path, accounts=3, seed=5)
    try:
        assert [sorted(a) for a in accounts] == [["api_key", "broker", "host", "name", "ws_url"]] * 3
        assert [a["broker"] for a in accounts] == ["zerodha", "dhan", "angel"]
        assert len({a["api_key"] for a in accounts}) == 3
        assert all(len(a["api_key"]) == 64 and int(a["api_key"], 16) >= 0 for a in accounts)
        assert all(
            a["host"].startswith("http://127.0.0.1:") and a["ws_url"].startswith("ws://127.0.0.1:") for a in accounts
        )
        funds = [
            httpx.post(f"{a['host']}/api/v1/funds", json={"apikey": a["api_key"]}).json()["data"] for a in accounts
        ]
        assert len({float(f["availablecash"]) for f in funds}) == 3  # each instance its own funds
    finally:
        stop(proc)


def test_same_seed_same_ticks_across_processes(tmp_path):
    a, b, c = tmp_path / "a.jsonl", tmp_path / "b.jsonl", tmp_path / "c.jsonl"
    for path, seed in ((a, "7"), (b, "7"), (c, "8")):
        done = run_fast(
            "--accounts",
            "0",
            "--seed",
            seed,
            "--start",
            START,
            "--max-ticks",
            "500",
            "--history-days",
            "3",
            "--record",
            str(path),
        )
        assert done.returncode == 0, done.stderr
    assert a.read_bytes() == b.read_bytes()
    assert a.read_bytes() != c.read_bytes()
    assert len(a.read_text().splitlines()) == 502  # header + tick 0 + 500 ticks


def test_replay_plays_the_recording_back(tmp_path):
    rec = tmp_path / "rec.jsonl"
    assert (
        run_fast(
            "--accounts",
            "0",
            "--seed",
            "3",
            "--start",
            START,
            "--max-ticks",
            "200",
            "--history-days",
            "3",
            "--record",
            str(rec),
        ).returncode
        == 0
    )
    again = tmp_path / "again.jsonl"
    done = run_fast("--accounts", "0", "--seed", "99", "--replay", str(rec), "--record", str(again))
    assert done.returncode == 0, done.stderr
    assert again.read_bytes() == rec.read_bytes()


def test_bad_arguments_are_refused(tmp_path):
    assert run_fast("--start", "2026-11-20T10:30:00").returncode == 2  # no UTC offset
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    done = run_fast("--replay", str(empty))
    assert done.returncode == 2 and "holds no ticks" in done.stderr
