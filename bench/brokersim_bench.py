"""brokersim throughput and latency.

Starts one brokersim process with 50 instances at 5 ticks/s, connects one WebSocket client
per instance subscribing 100 option symbols each (from a separate load process), and reports:
ticks delivered per second, brokersim CPU (share of one core) and RSS, and placeorder latency
(p50/p95) with and without the tick load.

    .venv/bin/python bench/brokersim_bench.py [--instances 50] [--symbols 100] [--seconds 20]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing as mp
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import aiohttp
import httpx
import psutil

ROOT = Path(__file__).resolve().parents[1]


def start(instances: int, tick_rate: float) -> tuple[subprocess.Popen, list[dict]]:
    accounts_file = Path(tempfile.mkdtemp()) / "accounts.json"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "brokersim",
            "--accounts",
            str(instances),
            "--seed",
            "1",
            "--base-port",
            "0",
            "--tick-rate",
            str(tick_rate),
            "--accounts-file",
            str(accounts_file),
        ],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    while not accounts_file.exists():
        if proc.poll() is not None:
            raise SystemExit(proc.stderr.read().decode())
        time.sleep(0.05)
    return proc, json.loads(accounts_file.read_text())


def chain_symbols(account: dict, n: int) -> list[dict]:
    body = {"apikey": account["api_key"], "symbol": "NIFTY", "exchange": "NFO", "instrumenttype": "options"}
    expiry = httpx.post(f"{account['host']}/api/v1/expiry", json=body).json()["data"][0].replace("-", "")
    chain = httpx.post(
        f"{account['host']}/api/v1/optionchain",
        json={
            "apikey": account["api_key"],
            "underlying": "NIFTY",
            "exchange": "NSE_INDEX",
            "expiry_date": expiry,
            "strike_count": n // 4 + 1,
        },
    ).json()["chain"]
    out = []
    for row in chain:
        for side in ("ce", "pe"):
            out.append({"symbol": row[side]["symbol"], "exchange": "NFO"})
    return out[:n]


async def _consume(accounts: list[dict], symbols: list[dict], seconds: float, warmup: float, result) -> None:
    counts = [0] * len(accounts)
    measuring = asyncio.Event()

    async def one(i: int, acc: dict) -> None:
        async with aiohttp.ClientSession() as s, s.ws_connect(acc["ws_url"], max_msg_size=0) as ws:
            await ws.send_json({"action": "authenticate", "api_key": acc["api_key"]})
            await ws.receive()
            await ws.send_json({"action": "subscribe", "symbols": symbols, "mode": 1})
            async for msg in ws:
                if measuring.is_set() and msg.data.startswith('{"type":"market_data"'):
                    counts[i] += 1

    tasks = [asyncio.create_task(one(i, a)) for i, a in enumerate(accounts)]
    await asyncio.sleep(warmup)
    measuring.set()
    t0 = time.monotonic()
    await asyncio.sleep(seconds)
    elapsed = time.monotonic() - t0
    measuring.clear()
    result.put((sum(counts), elapsed))
    for t in tasks:
        t.cancel()


def consumer(accounts, symbols, seconds, warmup, result) -> None:
    asyncio.run(_consume(accounts, symbols, seconds, warmup, result))


def order_latency(accounts: list[dict], n: int) -> list[float]:
    clients = [httpx.Client(base_url=a["host"], timeout=10) for a in accounts]
    for c, a in zip(clients, accounts, strict=True):
        c.post("/api/v1/ping", json={"apikey": a["api_key"]})
    out = []
    for k in range(n):
        i = k % len(accounts)
        body = {
            "apikey": accounts[i]["api_key"],
            "strategy": "bench",
            "symbol": "SBIN",
            "exchange": "NSE",
            "action": "BUY" if k % 2 == 0 else "SELL",
            "quantity": 1,
            "pricetype": "MARKET",
            "product": "MIS",
        }
        t0 = time.perf_counter()
        r = clients[i].post("/api/v1/placeorder", json=body)
        out.append((time.perf_counter() - t0) * 1000)
        assert r.status_code == 200, r.text
        if (k + 1) % len(accounts) == 0:
            time.sleep(0.12)  # stay inside each instance's 10 orders/s
    for c in clients:
        c.close()
    return out


def pct(values: list[float], p: float) -> float:
    values = sorted(values)
    return values[min(int(len(values) * p), len(values) - 1)]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--instances", type=int, default=50)
    ap.add_argument("--symbols", type=int, default=100)
    ap.add_argument("--tick-rate", type=float, default=5.0)
    ap.add_argument("--seconds", type=float, default=20.0)
    ap.add_argument("--orders", type=int, default=500)
    args = ap.parse_args()

    proc, accounts = start(args.instances, args.tick_rate)
    ps = psutil.Process(proc.pid)
    try:
        idle = order_latency(accounts, args.orders)
        symbols = chain_symbols(accounts[0], args.symbols)
        result = mp.Queue()
        load = mp.Process(target=consumer, args=(accounts, symbols, args.seconds, 3.0, result))
        load.start()
        time.sleep(3.0)
        cpu0, t0 = ps.cpu_times(), time.monotonic()
        loaded = order_latency(accounts, args.orders)
        delivered, elapsed = result.get(timeout=args.seconds + 30)
        cpu1, t1 = ps.cpu_times(), time.monotonic()
        load.join(10)
        if load.is_alive():
            load.terminate()
        cpu = (cpu1.user + cpu1.system - cpu0.user - cpu0.system) / (t1 - t0)
        rss = ps.memory_info().rss / 2**20
        offered = args.instances * len(symbols) * args.tick_rate
    finally:
        proc.terminate()
        proc.wait(10)
    print(
        f"instances={args.instances} symbols/instance={len(symbols)} tick_rate={args.tick_rate}/s window={elapsed:.1f}s"
    )
    print(f"ticks offered      {offered:,.0f}/s")
    print(f"ticks delivered    {delivered / elapsed:,.0f}/s")
    print(f"brokersim CPU      {cpu * 100:.0f}% of one core (includes serving {args.orders} orders)")
    print(f"brokersim RSS      {rss:.0f} MiB")
    print(f"placeorder idle    p50 {statistics.median(idle):.2f} ms  p95 {pct(idle, 0.95):.2f} ms  (n={len(idle)})")
    print(
        f"placeorder loaded  p50 {statistics.median(loaded):.2f} ms  p95 {pct(loaded, 0.95):.2f} ms  (n={len(loaded)})"
    )


if __name__ == "__main__":
    main()
