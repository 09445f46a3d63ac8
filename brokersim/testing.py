"""Helpers for tests and benchmarks that drive a real brokersim process (shared by every test suite)."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]


def start_brokersim(tmp: Path, *args: str, accounts: int = 4, seed: int = 11, wait: float = 30.0):
    accounts_file = tmp / f"accounts-{time.monotonic_ns()}.json"
    cmd = [
        sys.executable,
        "-m",
        "brokersim",
        "--accounts",
        str(accounts),
        "--seed",
        str(seed),
        "--base-port",
        "0",
        "--accounts-file",
        str(accounts_file),
        *args,
    ]
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + wait
    while not accounts_file.exists():
        if proc.poll() is not None:
            raise RuntimeError(f"brokersim exited: {proc.stderr.read()}")
        if time.monotonic() > deadline:
            proc.kill()
            raise RuntimeError("brokersim did not start")
        time.sleep(0.05)
    return proc, json.loads(accounts_file.read_text())


def stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()


class Broker:
    """One simulated OpenAlgo instance, seen from the outside."""

    def __init__(self, info: dict, *, token: str = "") -> None:
        """`token`: the control token, for a brokersim started with one (--control-token)."""
        self.info = info
        self.host = info["host"]
        self.ws_url = info["ws_url"]
        self.api_key = info["api_key"]
        self.http = httpx.Client(base_url=self.host, timeout=10, headers={"X-Sim-Token": token} if token else {})

    def api(self, endpoint: str, **body) -> httpx.Response:
        body.setdefault("apikey", self.api_key)
        return self.http.post(f"/api/v1/{endpoint}", json=body)

    def ok(self, endpoint: str, **body) -> dict:
        r = self.api(endpoint, **body)
        assert r.status_code == 200, r.text
        out = r.json()
        assert out["status"] == "success", out
        return out

    def sim(self, method: str, path: str, body: dict | None = None) -> dict:
        r = self.http.request(method, f"/_sim/{path}", json=body)
        assert r.status_code == 200, r.text
        return r.json()

    def ledger(self) -> list[dict]:
        return self.sim("GET", "ledger")["orders"]

    def set_profile(self, name: str) -> dict:
        """Switch this instance's broker profile (clean, zerodha, dhan, xts, angel, dead_token,
        semi_auto); a reset returns it to the one it started with."""
        return self.sim("POST", "profile", {"profile": name})

    def rollover(self, stage: str = "day_end", exchanges: list[str] | None = None) -> dict:
        """Run a stage of the daily rollover now: `squareoff` (the broker closes MIS positions),
        `close` (unfilled day orders expire), `new_day` (03:00: the day's orders and trades leave
        the books, NRML positions carry over) or `day_end` (all three). Answers the orderids
        squared off and expired, and the new session number."""
        body: dict = {"stage": stage}
        if exchanges is not None:
            body["exchanges"] = exchanges
        return self.sim("POST", "rollover", body)

    def nearest_future(self, name: str = "CRUDEOIL", exchange: str = "MCX") -> str:
        """The near-month future's symbol, e.g. CRUDEOIL18DEC26FUT."""
        expiry = self.ok("expiry", symbol=name, exchange=exchange, instrumenttype="futures")["data"][0]
        return f"{name}{expiry.replace('-', '')}FUT"

    def nearest_expiry(self, name: str = "NIFTY", exchange: str = "NFO") -> str:
        return self.ok("expiry", symbol=name, exchange=exchange, instrumenttype="options")["data"][0].replace("-", "")

    def atm_option(self, option_type: str = "CE", offset: str = "ATM") -> str:
        return self.ok(
            "optionsymbol",
            underlying="NIFTY",
            exchange="NSE_INDEX",
            expiry_date=self.nearest_expiry(),
            offset=offset,
            option_type=option_type,
        )["symbol"]
